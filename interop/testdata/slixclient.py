#!/usr/bin/env python3
"""A slixmpp client remote-controlled by the Go interop tests.

It logs in with the options given on the command line, then reads commands
from stdin (one JSON object a line) and reports what happens on stdout (one
JSON object a line, each with an "ev" key). Everything it reports is what
slixmpp itself parsed; the Go side asserts on it.

Commands: message, presence, subscribe, subscribed, unsubscribe,
unsubscribed, roster_set, roster_remove, get_roster, ping, quit. Each command may carry a "tag" that is echoed in its "done" event.
"""

import argparse
import asyncio
import json
import logging
import os
import ssl
import sys
import time
from pathlib import Path

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

NS_DELAY = "{urn:xmpp:delay}delay"


def emit(ev, **kw):
    kw["ev"] = ev
    kw["t"] = time.monotonic()  # seconds, for figures measured by the tests
    sys.stdout.write(json.dumps(kw, sort_keys=True) + "\n")
    sys.stdout.flush()


def roster_items(iq):
    out = {}
    for jid, item in iq["roster"]["items"].items():
        out[str(jid)] = {
            "subscription": item["subscription"],
            "ask": item["ask"],
            "name": item["name"],
            "groups": sorted(item["groups"]),
        }
    return out


class Client(slixmpp.ClientXMPP):
    def __init__(self, args):
        super().__init__(args.jid, args.password)
        self.args = args
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0199")  # ping, used as a barrier
        self.register_plugin("xep_0203")  # delayed delivery
        # Subscriptions are decided by the test, not by the library.
        self.roster.auto_authorize = None
        self.roster.auto_subscribe = False
        mechs = self["feature_mechanisms"]
        if args.mechs:
            mechs.use_mechs = set(args.mechs.split(","))
        if args.no_channel_binding:
            # Report no channel binding to the SCRAM code, so that it
            # sends the GS2 flag "n" rather than "y" (slixmpp only knows
            # tls-unique, which TLS 1.3 does not define).
            default_cb = mechs.sasl_callback

            def creds(required, optional):
                r = default_cb(required, optional)
                if "channel_binding" in r:
                    r["channel_binding"] = None
                return r

            mechs.sasl_callback = creds
        if args.cafile:
            # Trust exactly the server's self-signed certificate (hostname
            # checked against the JID's domain).
            self.ca_certs = Path(args.cafile)
        elif args.insecure:
            self.ssl_context.check_hostname = False
            self.ssl_context.verify_mode = ssl.CERT_NONE
        self.add_filter("out", self._out_filter)
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("failed_auth", self.on_failed_auth)
        self.add_event_handler("auth_success", lambda s: emit("auth_success", mech=self["feature_mechanisms"].mech.name))
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("presence", self.on_presence)
        self.add_event_handler("roster_update", self.on_roster_update)
        self.add_event_handler("stream_error", lambda s: emit("stream_error", xml=str(s)))
        self.add_event_handler("connection_failed", lambda e: emit("connection_failed", error=str(e)))
        self.add_event_handler("ssl_invalid_chain", lambda e: emit("ssl_invalid_chain", error=str(e)))
        self.add_event_handler("disconnected", self.on_disconnected)
        self.quitting = False
        self.commands = None

    def _out_filter(self, stanza):
        # Every SASL mechanism the client tries, in order.
        if stanza.xml.tag == "{urn:ietf:params:xml:ns:xmpp-sasl}auth":
            emit("auth_attempt", mech=stanza["mechanism"])
        return stanza

    def on_failed_auth(self, stanza):
        emit("auth_failure", mech=self["feature_mechanisms"].mech.name, condition=stanza["condition"], text=stanza["text"])

    async def on_session_start(self, _):
        sock = self.socket
        tls = sock.version() if hasattr(sock, "version") else None
        emit("session_start", jid=str(self.boundjid), mech=self["feature_mechanisms"].mech.name, tls=tls,
             direct_tls=bool(self.args.direct_tls))
        if not self.args.no_roster:
            try:
                iq = await self.get_roster(timeout=10)
                self.emit_roster(iq)
            except IqError as e:
                emit("roster_error", condition=e.iq["error"]["condition"])
            except IqTimeout:
                emit("roster_error", condition="timeout")
        if not self.args.no_presence:
            self.send_presence()
        emit("ready")
        # Keep a reference: asyncio only holds weak ones to running tasks.
        self.commands = asyncio.ensure_future(self.read_commands())

    def emit_roster(self, iq):
        # An empty result (no query) means "your cached version is current".
        # (Look before slixmpp's accessors, which create a missing query.)
        query = iq.xml.find("{jabber:iq:roster}query") is not None
        if not query:
            emit("roster", items={}, ver=None, query=False)
            return
        emit("roster", items=roster_items(iq), ver=iq["roster"]["ver"], query=True)

    def on_message(self, msg):
        d = msg.xml.find(NS_DELAY)
        delay = None
        if d is not None:
            delay = {"stamp": d.get("stamp", ""), "from": d.get("from", "")}
        emit("message", frm=str(msg["from"]), to=str(msg["to"]), type=msg["type"], id=msg["id"], body=msg["body"],
             delay=delay)

    def on_presence(self, p):
        emit("presence", frm=str(p["from"]), to=str(p["to"]), type=p["type"], show=p["show"], status=p["status"],
             priority=p["priority"])

    def on_roster_update(self, iq):
        if iq["type"] == "set":
            emit("roster_push", frm=str(iq["from"]), items=roster_items(iq), ver=iq["roster"]["ver"])

    def on_disconnected(self, reason):
        emit("disconnected", reason=str(reason or ""))
        if self.quitting or not self.sessionstarted:
            self.loop.stop()

    async def read_commands(self):
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = await reader.readline()
            if not line:
                await self.quit()
                return
            line = line.strip()
            if not line:
                continue
            cmd = json.loads(line)
            try:
                await self.run_command(cmd)
            except Exception as e:  # report, never die silently
                emit("command_error", cmd=cmd.get("cmd"), error=repr(e))

    async def run_command(self, cmd):
        c = cmd["cmd"]
        tag = cmd.get("tag", "")
        if c == "message":
            m = self.make_message(mto=cmd["to"], mbody=cmd["body"], mtype=cmd.get("type", "chat"))
            if cmd.get("id"):
                m["id"] = cmd["id"]
            m.send()
        elif c == "presence":
            self.send_presence(pto=cmd.get("to"), ptype=cmd.get("type"), pshow=cmd.get("show"),
                               pstatus=cmd.get("status"))
        elif c in ("subscribe", "subscribed", "unsubscribe", "unsubscribed"):
            self.send_presence(pto=cmd["jid"], ptype=c)
        elif c == "roster_set":
            iq = await self.update_roster(cmd["jid"], name=cmd.get("name", ""), groups=cmd.get("groups", []),
                                          timeout=10)
            emit("roster_set_result", jid=cmd["jid"], type=iq["type"])
        elif c == "roster_remove":
            iq = await self.del_roster_item(cmd["jid"])
            emit("roster_set_result", jid=cmd["jid"], type=iq["type"])
        elif c == "get_roster":
            # Sent by hand (slixmpp's get_roster() would hand the answer to
            # its roster code first, which adds a query to an empty result).
            req = self.Iq(stype="get")
            req.enable("roster")
            if not cmd.get("full") and "rosterver" in self.features:
                # The version of the last push seen, as slixmpp's own
                # get_roster() would send (XEP-0237).
                req["roster"]["ver"] = self.client_roster.version
                emit("roster_request", ver=self.client_roster.version)
            else:
                emit("roster_request", ver=None)
            iq = await req.send(timeout=10)
            self.emit_roster(iq)
        elif c == "ping":
            # An IQ round trip to the server: everything sent before it
            # has been handled by the server when the answer arrives.
            await self["xep_0199"].send_ping(self.boundjid.host, timeout=10)
        elif c == "quit":
            await self.quit()
            return
        else:
            raise ValueError("unknown command " + c)
        emit("done", cmd=c, tag=tag)

    async def quit(self):
        self.quitting = True
        await self.disconnect(wait=5)
        self.loop.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jid", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--direct-tls", action="store_true", help="TLS from the first byte instead of STARTTLS")
    ap.add_argument("--mechs", default="", help="comma-separated SASL mechanisms allowed")
    ap.add_argument("--no-channel-binding", action="store_true")
    ap.add_argument("--cafile", default="", help="the server's certificate, trusted as the only CA")
    ap.add_argument("--insecure", action="store_true")
    ap.add_argument("--no-roster", action="store_true")
    ap.add_argument("--no-presence", action="store_true")
    args = ap.parse_args()
    if os.environ.get("SLIX_DEBUG"):
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)

    xmpp = Client(args)
    emit("start", version=slixmpp.__version__)
    xmpp.connect((args.host, args.port), use_ssl=args.direct_tls, force_starttls=not args.direct_tls,
                 disable_starttls=args.direct_tls)
    xmpp.loop.run_forever()
    emit("exit")


if __name__ == "__main__":
    main()
