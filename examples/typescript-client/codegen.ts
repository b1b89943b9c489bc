// GraphQL Code Generator: types for the committed schema and the shared operations.
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: "../../schema.graphql",
  documents: ["../../tests/operations/*.graphql"],
  generates: {
    "src/generated/graphql.ts": {
      plugins: ["typescript", "typescript-operations", "typed-document-node"],
      config: {
        scalars: { DateTime: "string", ID: "string" },
        strictScalars: true,
        enumsAsTypes: true,
        useTypeImports: true,
      },
    },
  },
  // An operation that does not match the schema fails generation.
  noSilentErrors: true,
};

export default config;
