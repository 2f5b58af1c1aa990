module github.com/xmppd/xmppd

go 1.26

require (
	github.com/beevik/etree v1.8.1
	github.com/coder/websocket v1.8.15
	github.com/mattn/go-sqlite3 v1.14.53
	github.com/pion/logging v0.2.4
	github.com/pion/stun/v3 v3.0.1
	github.com/pion/turn/v4 v4.1.4
	golang.org/x/net v0.34.0
	golang.org/x/sys v0.41.0
	golang.org/x/text v0.21.0
	mellium.im/xmpp v0.22.0
)

require (
	github.com/pion/dtls/v3 v3.0.7 // indirect
	github.com/pion/randutil v0.1.0 // indirect
	github.com/pion/transport/v3 v3.0.8 // indirect
	github.com/pion/transport/v4 v4.1.0 // indirect
	github.com/wlynxg/anet v0.0.5 // indirect
	golang.org/x/crypto v0.32.0 // indirect
	mellium.im/reader v0.1.0 // indirect
	mellium.im/xmlstream v0.15.4 // indirect
)
