-- The durable copy of every step log and annotations file: each replica's DATA_DIR/logs is a cache of these rows.
-- `path` is the file's path under the log root (`<job>/<attempt>/<step>.log`, `<job>/<attempt>/annotations.jsonl`),
-- byte-ordered so one job's files are one range of the primary key; `start` is the chunk's byte offset in the file.
CREATE TABLE boomerang_log_chunks (
    path text COLLATE "C" NOT NULL,
    start bigint NOT NULL,
    bytes bytea NOT NULL,
    PRIMARY KEY (path, start)
);
