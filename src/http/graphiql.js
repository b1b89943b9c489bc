ReactDOM.createRoot(document.getElementById("graphiql")).render(
  React.createElement(GraphiQL, {
    fetcher: GraphiQL.createFetcher({ url: new URL("/graphql", window.location.origin).toString() }),
    defaultEditorToolsVisibility: true,
    defaultHeaders: '{\n  "Authorization": "Bearer <accessToken>"\n}',
  })
);
