// A helpdesk written in Node.js talking to `omnichannel serve` through the service API.
// Plain fetch and node:crypto — no packages. Node 20 or later.
//
//   OMNICHANNEL_URL=http://127.0.0.1:8000 OMNICHANNEL_API_KEY=... \
//   WEBHOOK_SECRET=whsec_... WEBHOOK_PORT=9000 node client.mjs
//
// It lists the open conversations, replies to the most recent one, then receives the gateway's
// signed webhooks on WEBHOOK_PORT, verifies each signature (Standard Webhooks) and prints the
// verified events as JSON lines, until it has seen WEBHOOK_COUNT of them (default: forever).

import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

const base = (process.env.OMNICHANNEL_URL ?? "http://127.0.0.1:8000").replace(/\/$/, "");
const key = process.env.OMNICHANNEL_API_KEY;
const secret = process.env.WEBHOOK_SECRET;
const port = Number(process.env.WEBHOOK_PORT ?? 9000);
const wanted = Number(process.env.WEBHOOK_COUNT ?? Infinity);

async function api(method, path, body, headers = {}) {
  const response = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) {
    // every error is application/problem+json: status, code, detail, errors[{field, message}]
    throw new Error(`${response.status} ${data.code}: ${data.detail ?? ""}`);
  }
  return data;
}

// Standard Webhooks: HMAC-SHA256 over "id.timestamp.body" with the base64 key after "whsec_";
// the header may carry several "v1,<signature>" (two while the sender rotates its secret).
export function verifyWebhook(headers, rawBody, whsec, toleranceSeconds = 300) {
  const id = headers["webhook-id"];
  const timestamp = headers["webhook-timestamp"];
  const signatures = headers["webhook-signature"];
  if (!id || !timestamp || !signatures) return false;
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > toleranceSeconds) return false;
  const secretBytes = Buffer.from(whsec.replace(/^whsec_/, ""), "base64");
  const expected = createHmac("sha256", secretBytes).update(`${id}.${timestamp}.${rawBody}`).digest();
  return signatures.split(" ").some((entry) => {
    const [version, signature] = entry.split(",");
    const given = Buffer.from(signature ?? "", "base64");
    return version === "v1" && given.length === expected.length && timingSafeEqual(given, expected);
  });
}

async function main() {
  const page = await api("GET", "/conversations?status=open&limit=10");
  for (const conversation of page.items) {
    console.log(JSON.stringify({ conversation: conversation.id, channel: conversation.channel_key }));
  }
  if (page.items.length > 0) {
    const target = page.items[0];
    const reply = await api("POST", `/conversations/${target.id}/messages`,
      { text: "Thanks for writing — an agent is on it.", author: { kind: "human", name: "Node agent" } },
      { "idempotency-key": `node-reply-${target.id}` });
    console.log(JSON.stringify({ replied: reply.id, status: reply.status }));
  }

  let seen = 0;
  const server = createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      if (!secret || !verifyWebhook(request.headers, raw, secret)) {
        response.writeHead(401).end();
        console.log(JSON.stringify({ rejected: request.headers["webhook-id"] ?? null }));
        return;
      }
      const event = JSON.parse(raw);
      response.writeHead(204).end();
      console.log(JSON.stringify({ verified: event.type, seq: event.seq, id: request.headers["webhook-id"] }));
      seen += 1;
      if (seen >= wanted) server.close();
    });
  });
  server.listen(port, "127.0.0.1", () => console.log(JSON.stringify({ listening: port })));
}

main().catch((error) => {
  console.error(error.message);
  process.exit(1);
});
