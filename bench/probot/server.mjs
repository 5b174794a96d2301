// The peer of `boomerang bench ingest`: a Probot app with a handler for every event that does nothing, served on a
// free loopback port by Node's http server, the way Probot's docs deploy it (createNodeMiddleware). Probot verifies
// each delivery's signature and runs its handlers; it stores nothing. It prints its port on the first line of stdout.
//
// Environment: PEER_SECRET (the webhook secret), PEER_PRIVATE_KEY (an RSA key in PEM: Probot wants one to start, and
// asks GitHub for nothing here), PEER_PATH (the webhook path).
import { createServer } from "node:http";
import { Probot, createNodeMiddleware } from "probot";

const env = (name) => {
  const value = process.env[name];
  if (value === undefined || value === "") throw new Error(`${name} is not set`);
  return value;
};
const probot = new Probot({
  appId: 1,
  privateKey: env("PEER_PRIVATE_KEY"),
  secret: env("PEER_SECRET"),
  logLevel: "warn",
});
const app = (app) => {
  app.onAny(async () => {});
};
const middleware = await createNodeMiddleware(app, { probot, webhooksPath: env("PEER_PATH") });
const server = createServer((request, response) => {
  middleware(request, response, () => {
    response.writeHead(404);
    response.end();
  });
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
