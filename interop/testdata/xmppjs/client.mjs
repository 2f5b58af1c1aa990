// An xmpp.js (@xmpp/client) client remote-controlled by the Go interop
// tests, like ../slixclient.py: options on the command line, commands as JSON
// lines on stdin, events as JSON lines (each with an "ev" key) on stdout.
//
//   node [--experimental-websocket] client.mjs SERVICE DOMAIN USERNAME PASSWORD RESOURCE
//
// Commands: {"cmd":"message","to":…,"body":…}, {"cmd":"presence"}, {"cmd":"quit"}.

import { client, xml } from "@xmpp/client";
import { createInterface } from "node:readline";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const [service, domain, username, password, resource] = process.argv.slice(2);

function emit(ev, fields = {}) {
  process.stdout.write(JSON.stringify({ ev, ...fields }) + "\n");
}

if (typeof WebSocket !== "function") {
  emit("fatal", { error: "no global WebSocket (Node >= 22, or --experimental-websocket)" });
  process.exit(2);
}

const xmpp = client({ service, domain, username, password, resource });
emit("start", { version: require("@xmpp/client/package.json").version });

xmpp.on("error", (err) => emit("error", { error: String(err), condition: err.condition || "" }));
xmpp.on("offline", () => emit("offline"));
xmpp.on("status", (status) => emit("status", { status }));
xmpp.on("send", (el) => {
  if (el.name === "auth" && el.attrs.xmlns === "urn:ietf:params:xml:ns:xmpp-sasl") {
    emit("auth_attempt", { mech: el.attrs.mechanism });
  }
});
xmpp.on("nonza", (el) => {
  if (el.attrs.xmlns === "urn:ietf:params:xml:ns:xmpp-sasl" && (el.name === "success" || el.name === "failure")) {
    emit("auth_" + el.name, { xml: el.toString() });
  }
});

xmpp.on("stanza", (st) => {
  if (st.is("message")) {
    emit("message", {
      frm: st.attrs.from || "",
      to: st.attrs.to || "",
      type: st.attrs.type || "",
      id: st.attrs.id || "",
      body: st.getChildText("body"),
    });
  } else if (st.is("presence")) {
    emit("presence", { frm: st.attrs.from || "", to: st.attrs.to || "", type: st.attrs.type || "available" });
  }
});

xmpp.on("online", async (address) => {
  emit("session_start", { jid: address.toString(), secure: xmpp.isSecure() });
  await xmpp.send(xml("presence"));
  emit("ready");
});

const rl = createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  line = line.trim();
  if (!line) return;
  const cmd = JSON.parse(line);
  try {
    switch (cmd.cmd) {
      case "message":
        await xmpp.send(xml("message", { to: cmd.to, type: cmd.type || "chat", id: cmd.id }, xml("body", {}, cmd.body)));
        break;
      case "presence":
        await xmpp.send(xml("presence"));
        break;
      case "quit":
        await quit();
        return;
      default:
        throw new Error("unknown command " + cmd.cmd);
    }
    emit("done", { cmd: cmd.cmd, tag: cmd.tag || "" });
  } catch (err) {
    emit("command_error", { cmd: cmd.cmd, error: String(err) });
  }
});
rl.on("close", () => quit());

let quitting = false;
async function quit() {
  if (quitting) return;
  quitting = true;
  try {
    await xmpp.stop();
  } catch (err) {
    emit("error", { error: String(err) });
  }
  emit("exit");
  process.exit(0);
}

xmpp.start().catch((err) => {
  emit("fatal", { error: String(err), condition: err.condition || "" });
  process.exit(1);
});
