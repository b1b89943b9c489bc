// The live server's introspection, printed by graphql-js, equals the committed
// schema.graphql printed by graphql-js: what codegen tools read from either is the same.
//
//   AUTH_SERVER_URL=http://127.0.0.1:4000/graphql node introspection.mjs

import { readFileSync } from "node:fs";

import {
  buildClientSchema,
  buildSchema,
  getIntrospectionQuery,
  printSchema,
} from "graphql";

const url = process.env.AUTH_SERVER_URL ?? "http://127.0.0.1:4000/graphql";
const sdlPath = new URL("../../schema.graphql", import.meta.url);

const response = await fetch(url, {
  method: "POST",
  headers: { "content-type": "application/json", accept: "application/graphql-response+json" },
  body: JSON.stringify({
    query: getIntrospectionQuery({ descriptions: true, specifiedByUrl: true }),
    operationName: "IntrospectionQuery",
  }),
});
if (response.status !== 200) throw new Error(`introspection: HTTP ${response.status}`);
const result = await response.json();
if (result.errors) throw new Error(`introspection: ${JSON.stringify(result.errors)}`);

const live = printSchema(buildClientSchema(result.data));
const committed = printSchema(buildSchema(readFileSync(sdlPath, "utf8")));
if (live !== committed) {
  const a = live.split("\n");
  const b = committed.split("\n");
  const line = a.findIndex((l, i) => l !== b[i]);
  console.error(`first difference at line ${line + 1}:`);
  console.error(`  live:      ${JSON.stringify(a[line])}`);
  console.error(`  committed: ${JSON.stringify(b[line])}`);
  process.exit(1);
}
console.log(`introspection equals schema.graphql (${live.split("\n").length} lines, graphql-js)`);
