-- Server (CSBS) jobs have phases of their own: protecting the server and
-- waiting for its checkpoint, instead of borrowing the volume backup's.
-- A server job that an older agent left running is continued from the
-- same step under its new name.
UPDATE jobs SET phase = 'protect_requested'
 WHERE kind = 'server' AND phase = 'backup_requested';
UPDATE jobs SET phase = 'checkpoint_creating'
 WHERE kind = 'server' AND phase = 'backup_creating';
