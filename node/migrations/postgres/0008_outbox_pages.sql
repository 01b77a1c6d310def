-- Outbox look-ups by sequence number (PostgreSQL). Keep in step with
-- ../sqlite/0008_outbox_pages.sql.
-- A page of the outbox reads the public activities and those of each audience the
-- requester may see as index ranges after the cursor (`Store::outbox_visible`). The
-- public ones had no index of their own: when few activities are public, finding the
-- next ones walked the rest of the outbox.
CREATE INDEX outbox_public ON outbox (seq) WHERE public = TRUE;
-- The audience of one activity (its delivery jobs, `FAN_OUT_SQL`): the key of
-- `outbox_audience` starts with the audience, so finding an activity's rows by `seq`
-- read the whole table, for each activity appended.
CREATE INDEX outbox_audience_seq ON outbox_audience (seq);
