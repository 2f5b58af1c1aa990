// Package pep makes every local account a personal publish-subscribe
// service: XEP-0163 Personal Eventing Protocol over the XEP-0060 subset it
// needs, with the publish-options that XEP-0223 private storage, XEP-0384
// OMEMO and XEP-0084 avatars rely on, and XEP-0402 bookmarks kept in step
// with XEP-0048 bookmarks in PEP and in XEP-0049 private storage (#compat).
//
// It is a module in the pipeline of docs/ARCHITECTURE.md. New registers on
// the router:
//
//   - iq handlers for http://jabber.org/protocol/pubsub (publish with
//     auto-create and publish-options preconditions, retract, create with
//     configure, items) and pubsub#owner (configure, default, delete,
//     purge) on accounts' bare JIDs;
//   - disco#info and disco#items on bare JIDs: the account identity plus
//     pubsub/pep with the features (Features), node information, the nodes
//     a requester may see and their items;
//   - an available callback: a session's XEP-0115 caps are read from its
//     presence, resolved by a disco#info query to the session (verified,
//     then cached process-wide by ver), and the session is sent the last
//     published items of the nodes it wants (NODE+notify).
//
// Subscriptions are implicit (XEP-0163 §4.2): a publish is notified to the
// owner's available resources and to the available resources of contacts
// with a presence subscription to the owner, each only if its caps say
// NODE+notify and the node's access model lets it see the node. Access
// models: presence (default), open, roster, whitelist (owner only).
//
// Nodes and items live in a storage.PubSub; the module keeps no state of
// its own but the caps cache and each session's caps (router.Session.Value).
package pep
