// The tiny downstream GraphQL service behind the gateway (graphql-js on node:http):
//   { hello }   -> "world"
//   { whoami }  -> the `sub` of the JWT payload that the gateway forwards in the request's
//                  extensions (the JWT plugin's default), or null without one.
// Listens on 127.0.0.1:$PORT, POST /graphql with a JSON body.
import http from 'node:http';
import { buildSchema, graphql } from 'graphql';

const schema = buildSchema(`type Query { hello: String! whoami: String }`);
const rootValue = {
  hello: () => 'world',
  whoami: (_args, context) => context.extensions?.jwt?.payload?.sub ?? null,
};

const server = http.createServer((req, res) => {
  const send = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (req.method !== 'POST' || new URL(req.url, 'http://x').pathname !== '/graphql') {
    return send(404, { errors: [{ message: 'POST /graphql' }] });
  }
  let raw = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => (raw += chunk));
  req.on('end', async () => {
    let body;
    try {
      body = JSON.parse(raw);
    } catch {
      return send(400, { errors: [{ message: 'the body is not JSON' }] });
    }
    const result = await graphql({
      schema,
      source: body.query,
      rootValue,
      contextValue: { extensions: body.extensions ?? {} },
      variableValues: body.variables,
      operationName: body.operationName,
    });
    send(200, result);
  });
});
server.listen(Number(process.env.PORT), '127.0.0.1', () => {
  console.log(`downstream on http://127.0.0.1:${server.address().port}/graphql`);
});
