-- 0002: roster_items.hidden, the explicit "kept only to remember a pending
-- inbound request from a contact the user never added" flag
-- (storage.RosterItem.Hidden). Items stored before it get 0 (visible).

ALTER TABLE roster_items ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0 CHECK (hidden IN (0, 1));
