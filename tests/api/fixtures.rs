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
    introspection_query(false)
}

/// `getIntrospectionQuery` with every option on (descriptions, schemaDescription,
/// specifiedByUrl, directiveIsRepeatable, inputValueDeprecation, oneOf), as schema-driven
/// code generators may send it.
pub fn full_options_introspection_query() -> String {
    introspection_query(true)
}

/// `getIntrospectionQuery`'s text with its default options or with every option on.
fn introspection_query(every_option: bool) -> String {
    let on = |text: &'static str| if every_option { text } else { "" };
    let deprecated_args = on("(includeDeprecated: true)");
    let schema_description = on("\n    description");
    let is_repeatable = on("\n      isRepeatable");
    let type_options = on("\n  specifiedByURL\n  isOneOf");
    let input_value_deprecation = on("\n  isDeprecated\n  deprecationReason");
    format!(
        "
query IntrospectionQuery {{
  __schema {{{schema_description}
    queryType {{ name }}
    mutationType {{ name }}
    subscriptionType {{ name }}
    types {{
      ...FullType
    }}
    directives {{
      name
      description{is_repeatable}
      locations
      args{deprecated_args} {{
        ...InputValue
      }}
    }}
  }}
}}

fragment FullType on __Type {{
  kind
  name
  description{type_options}
  fields(includeDeprecated: true) {{
    name
    description
    args{deprecated_args} {{
      ...InputValue
    }}
    type {{
      ...TypeRef
    }}
    isDeprecated
    deprecationReason
  }}
  inputFields{deprecated_args} {{
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
  defaultValue{input_value_deprecation}
}}
{TYPE_REF}"
    )
}
