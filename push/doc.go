// Package push wakes sleeping devices: XEP-0357 push notifications on the
// user's server, and a built-in app server that forwards them to Apple
// (APNs) and Google (FCM).
//
// # The user's server (Module)
//
// A client enables push for its device with
//
//	<iq type='set'><enable xmlns='urn:xmpp:push:0' jid='push.example.org' node='NODE'>
//	  <x xmlns='jabber:x:data' type='submit'>
//	    <field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>
//	    <field var='type'><value>apns</value></field>
//	    <field var='token'><value>DEVICE-TOKEN</value></field>
//	  </x>
//	</enable></iq>
//
// and disables it with <disable jid='…' [node='…']/> (no node: every node
// of that app server). Registrations are stored per account
// (storage.PushRegistrations), one per (app server, node), with the
// resource of the session that enabled them; the account's disco#info
// lists urn:xmpp:push:0.
//
// A chat or normal message with a body, an encrypted payload (OMEMO,
// OpenPGP) or a Jingle Message Initiation <propose/> triggers a
// notification when
//   - it finds no available resource (the router's OnOffline hook; the hook
//     only looks, offline storage still keeps the message): every
//     registration whose device has no live session is notified;
//   - it is sent to a session that hibernates (XEP-0198; c2s
//     Options.OnHibernated): the registrations of that session (enabled on
//     it, or from its resource) are notified;
//   - it goes to the bare JID while another resource is available (the
//     OnInbound hook): devices with no bound session at all are notified
//     of a call always, of a message when an archive (MAM) keeps it for
//     them.
//
// The notification is an iq set from the user's bare JID to the app
// server (XEP-0357 §6): a pubsub publish to NODE of
// <notification xmlns='urn:xmpp:push:0'> with the urn:xmpp:push:summary
// form (message-count since the device went away, last-message-sender as
// a bare JID, last-message-body only with include-body), and the stored
// publish-options form. For a call the notification also carries
//
//	<call xmlns='urn:xmppd:push:call:0' id='PROPOSE-ID' from='CALLER-FULL-JID' media='audio video'/>
//
// which marks it urgent: the built-in app server sends a VoIP push.
// Calls are never throttled; messages to one device within the throttle
// time are summed up in one notification sent when it ends. A device's
// count starts over when it comes back (binds its resource, or its
// hibernated session speaks again) or enables again. An error answer from
// the app server disables the registration (XEP-0357 §7.1), except
// transient ones (type wait, remote-server-*, internal-server-error,
// resource-constraint, undefined-condition).
//
// Notifications keep their order: each account has a queue (reading its
// registrations, counting) and each device one (publishing, one at a time,
// waiting for the answer). max-queue bounds what waits on a queue; past it
// a notification is refused, counted (Module.Overflowed) and logged.
//
// # The built-in app server (AppServer)
//
// push.HOST, for each host, runs when APNs or FCM credentials are
// configured. It takes no publish as a stanza (forbidden, whoever sends
// it): the push module hands it notifications in-process, for
// registrations that are stored, and it reads the device from the stored
// publish-options form, which names the device:
//
//	type        apns | fcm                                   (required)
//	token       APNs device token (hex) / FCM registration token (required)
//	voip-token  APNs PushKit token for calls (default: token)
//	sandbox     true: APNs development environment (sandbox-endpoint)
//
// Messages become an APNs alert push (apns-push-type alert, topic
// BUNDLE, apns-priority 10, apns-expiration now+message-ttl, collapse id
// "messages") or an FCM data message (android priority message-priority,
// collapse_key "messages"); calls become an APNs VoIP push (apns-push-type
// voip, topic BUNDLE.voip, expiration now+call-ttl, collapse id
// "call:ID") or an FCM data message with android priority high. APNs
// authenticates with a provider token (JWT ES256: kid = key id, iss = team
// id), renewed every 40 minutes; FCM with an OAuth 2.0 access token from
// the service account (JWT-bearer grant, RS256), cached until it expires.
// A device the vendor says is gone (APNs 410 Unregistered, 400
// BadDeviceToken or DeviceTokenNotForTopic; FCM UNREGISTERED/404,
// INVALID_ARGUMENT, SENDER_ID_MISMATCH) is answered with an iq error that
// makes the user's server disable the registration; failures on our side
// or the vendor's are wait errors that keep it.
package push
