/**
 * The embedded log's tables. Each partition's records live in a table of their own, `p<id>`,
 * whose rowid is the offset: appends and offset range reads need no secondary index.
 */
export const schemaSql = `
CREATE TABLE IF NOT EXISTS topics (
  topic TEXT PRIMARY KEY,
  partitions INTEGER NOT NULL CHECK (partitions > 0)
);
CREATE TABLE IF NOT EXISTS partitions (
  id INTEGER PRIMARY KEY,
  topic TEXT NOT NULL,
  partition INTEGER NOT NULL,
  UNIQUE (topic, partition)
);
CREATE TABLE IF NOT EXISTS group_offsets (
  grp TEXT NOT NULL,
  topic TEXT NOT NULL,
  partition INTEGER NOT NULL,
  next_offset INTEGER NOT NULL,
  PRIMARY KEY (grp, topic, partition)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_members (
  grp TEXT NOT NULL,
  member TEXT NOT NULL,
  pid INTEGER NOT NULL,
  heartbeat INTEGER NOT NULL,
  PRIMARY KEY (grp, member)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_assignments (
  grp TEXT NOT NULL,
  topic TEXT NOT NULL,
  partition INTEGER NOT NULL,
  member TEXT NOT NULL,
  PRIMARY KEY (grp, topic, partition)
) WITHOUT ROWID;
`;

export const partitionTableSql = (table: string) => `
CREATE TABLE IF NOT EXISTS ${table} (
  offset INTEGER PRIMARY KEY,
  key TEXT NOT NULL,
  value BLOB NOT NULL,
  headers TEXT,
  ts INTEGER NOT NULL
);`;
