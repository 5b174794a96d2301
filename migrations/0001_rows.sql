-- Every row of the store: the same ordered key-value space the embedded engines keep (keys are the store's
-- ASCII paths, values its JSON documents), so one store API runs on either.
CREATE TABLE boomerang_rows (
    key bytea PRIMARY KEY,
    value bytea NOT NULL
);
