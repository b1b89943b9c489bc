//! Request texts shared by tests: the introspection queries clients send.

const TYPE_REF: &str = "
fragment TypeRef on __Type {
  kind
  name
  ofType {
    kind
    name
    ofType {
      kind
      name
      ofType {
        kind
        name
        ofType {
          kind
          name
          ofType {
            kind
            name
            ofType {
              kind
              name
              ofType {
                kind
                name
              }
            }
          }
        }
      }
    }
  }
}";

/// What graphql-js `getIntrospectionQuery()` returns with its default options, which is
/// what GraphiQL sends.
pub fn standard_introspection_query() -> String {
    format!(
        "
query IntrospectionQuery {{
  __schema {{
    queryType {{ name }}
    mutationType {{ name }}
    subscriptionType {{ name }}
    types {{
      ...FullType
    }}
    directives {{
      name
      description
      locations
      args {{
        ...InputValue
      }}
    }}
  }}
}}

fragment FullType on __Type {{
  kind
  name
  description
  fields(includeDeprecated: true) {{
    name
    description
    args {{
      ...InputValue
    }}
    type {{
      ...TypeRef
    }}
    isDeprecated
    deprecationReason
  }}
  inputFields {{
    ...InputValue
  }}
  interfaces {{
    ...TypeRef
  }}
  enumValues(includeDeprecated: true) {{
    name
    description
    isDeprecated
    deprecationReason
  }}
  possibleTypes {{
    ...TypeRef
  }}
}}

fragment InputValue on __InputValue {{
  name
  description
  type {{ ...TypeRef }}
  defaultValue
}}
{TYPE_REF}"
    )
}

/// `getIntrospectionQuery` with every option on (descriptions, schemaDescription,
/// specifiedByUrl, directiveIsRepeatable, inputValueDeprecation, oneOf), as schema-driven
/// code generators may send it.
pub fn full_options_introspection_query() -> String {
    format!(
        "
query IntrospectionQuery {{
  __schema {{
    description
    queryType {{ name }}
    mutationType {{ name }}
    subscriptionType {{ name }}
    types {{
      ...FullType
    }}
    directives {{
      name
      description
      isRepeatable
      locations
      args(includeDeprecated: true) {{
        ...InputValue
      }}
    }}
  }}
}}

fragment FullType on __Type {{
  kind
  name
  description
  specifiedByURL
  isOneOf
  fields(includeDeprecated: true) {{
    name
    description
    args(includeDeprecated: true) {{
      ...InputValue
    }}
    type {{
      ...TypeRef
    }}
    isDeprecated
    deprecationReason
  }}
  inputFields(includeDeprecated: true) {{
    ...InputValue
  }}
  interfaces {{
    ...TypeRef
  }}
  enumValues(includeDeprecated: true) {{
    name
    description
    isDeprecated
    deprecationReason
  }}
  possibleTypes {{
    ...TypeRef
  }}
}}

fragment InputValue on __InputValue {{
  name
  description
  type {{ ...TypeRef }}
  defaultValue
  isDeprecated
  deprecationReason
}}
{TYPE_REF}"
    )
}
