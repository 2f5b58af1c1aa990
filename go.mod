module github.com/xmppd/xmppd

go 1.26

require (
	github.com/beevik/etree v1.8.1
	github.com/coder/websocket v1.8.15
	github.com/mattn/go-sqlite3 v1.14.53
	golang.org/x/net v0.34.0
	golang.org/x/text v0.21.0
	mellium.im/xmpp v0.22.0
)

require (
	mellium.im/reader v0.1.0 // indirect
	mellium.im/xmlstream v0.15.4 // indirect
)
