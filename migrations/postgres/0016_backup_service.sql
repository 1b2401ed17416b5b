-- Which service made a job's backup (`vbs`, `cbr`; `evs` for a snapshot,
-- `csbs` for a server backup), and for CBR the vault it is in. NULL in a
-- job recorded before CBR: VBS, EVS or CSBS by the job's kind. The same
-- policy keeps one history when its cloud moves from VBS to CBR.
ALTER TABLE jobs ADD COLUMN service TEXT COLLATE "C";
ALTER TABLE jobs ADD COLUMN vault_id TEXT COLLATE "C";
