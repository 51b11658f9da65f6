"""The schema at the newest migration: the statements that the migrations leave in
sqlite_master of a new database, in their order there. `database.create` makes new databases
from them without loading alembic and SQLAlchemy. Written by scripts/schema-at-head (do not
edit); a test checks that they agree with the migrations."""

REVISION = '0005'
STATEMENTS = (
    'CREATE TABLE alembic_version (\n'
    '\tversion_num VARCHAR(32) NOT NULL, \n'
    '\tCONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)\n'
    ')',
    'CREATE TABLE directive_versions (\n'
    '\tid INTEGER NOT NULL, \n'
    '\tdirective_id INTEGER NOT NULL, \n'
    '\tsha256 TEXT NOT NULL, \n'
    '\tdefinition TEXT NOT NULL, \n'
    '\tPRIMARY KEY (id), \n'
    '\tUNIQUE (sha256)\n'
    ')',
    'CREATE TABLE backlogs (\n'
    '\tid TEXT NOT NULL, \n'
    '\tseq INTEGER NOT NULL, \n'
    '\tdirective_id INTEGER NOT NULL, \n'
    '\tdirective_version INTEGER NOT NULL, \n'
    '\tstate TEXT NOT NULL, \n'
    '\ttitle TEXT NOT NULL, \n'
    '\tstatus TEXT NOT NULL, \n'
    '\ttag TEXT NOT NULL, \n'
    '\tcurrent_stage INTEGER NOT NULL, \n'
    '\thighest_stage INTEGER NOT NULL, \n'
    '\trisk INTEGER NOT NULL, \n'
    '\trisk_class TEXT NOT NULL, \n'
    '\tsrc_ips TEXT NOT NULL, \n'
    '\tdst_ips TEXT NOT NULL, \n'
    '\tnetworks TEXT NOT NULL, \n'
    '\tcustom_data TEXT NOT NULL, \n'
    '\tcreated_time INTEGER NOT NULL, \n'
    '\tupdate_time INTEGER NOT NULL, \n'
    '\tlast_srcport INTEGER NOT NULL, \n'
    '\tlast_dstport INTEGER NOT NULL, \n'
    '\tdeadline INTEGER NOT NULL, \n'
    "\tended_time INTEGER, src_sockets TEXT DEFAULT '[]' NOT NULL, dst_sockets TEXT "
    "DEFAULT '[]' NOT NULL, \n"
    '\tPRIMARY KEY (id), \n'
    "\tCONSTRAINT backlog_state CHECK (state IN ('live', 'finished', 'expired')), \n"
    '\tUNIQUE (seq), \n'
    '\tFOREIGN KEY(directive_version) REFERENCES directive_versions (id)\n'
    ')',
    'CREATE INDEX ix_backlogs_directive_id ON backlogs (directive_id)',
    'CREATE INDEX ix_backlogs_state_ended ON backlogs (state, ended_time)',
    'CREATE TABLE stages (\n'
    '\tbacklog_id TEXT NOT NULL, \n'
    '\tstage INTEGER NOT NULL, \n'
    '\trule TEXT NOT NULL, \n'
    '\tresolved BOOLEAN NOT NULL, \n'
    '\tstatus TEXT NOT NULL, \n'
    '\tstart_time INTEGER NOT NULL, \n'
    '\tend_time INTEGER NOT NULL, \n'
    '\tfirst_event TEXT, \n'
    '\tsticky TEXT NOT NULL, \n'
    '\tPRIMARY KEY (backlog_id, stage), \n'
    '\tFOREIGN KEY(backlog_id) REFERENCES backlogs (id) ON DELETE CASCADE\n'
    ')',
    'CREATE TABLE stage_events (\n'
    '\tid INTEGER NOT NULL, \n'
    '\tbacklog_id TEXT NOT NULL, \n'
    '\tstage INTEGER NOT NULL, \n'
    '\tevent_id TEXT NOT NULL, event_time INTEGER, src_ip TEXT, dst_ip TEXT, src_port '
    'INTEGER, dst_port INTEGER, \n'
    '\tPRIMARY KEY (id), \n'
    '\tUNIQUE (backlog_id, stage, event_id), \n'
    '\tFOREIGN KEY(backlog_id) REFERENCES backlogs (id) ON DELETE CASCADE\n'
    ')',
    'CREATE TABLE enrichments (\n'
    '\tbacklog_id TEXT NOT NULL, \n'
    '\tkind TEXT NOT NULL, \n'
    '\tprovider TEXT NOT NULL, \n'
    '\tterm TEXT NOT NULL, \n'
    '\tresult TEXT NOT NULL, \n'
    '\tPRIMARY KEY (backlog_id, kind, provider, term, result), \n'
    "\tCONSTRAINT enrichment_kind CHECK (kind IN ('intel', 'vuln')), \n"
    '\tFOREIGN KEY(backlog_id) REFERENCES backlogs (id) ON DELETE CASCADE\n'
    ')',
    'CREATE TABLE outbox (\n'
    '\tseq INTEGER NOT NULL, \n'
    '\tfile TEXT NOT NULL, \n'
    '\tline TEXT NOT NULL, \n'
    '\tPRIMARY KEY (seq)\n'
    ')',
    'CREATE TABLE output_files (\n'
    '\tfile TEXT NOT NULL, \n'
    '\tpath TEXT NOT NULL, \n'
    '\tsize INTEGER NOT NULL, \n'
    '\twritten_seq INTEGER NOT NULL, \n'
    '\tPRIMARY KEY (file)\n'
    ')',
    'CREATE TABLE input_progress (\n'
    '\tsource TEXT NOT NULL, \n'
    '\tline INTEGER NOT NULL, \n'
    '\t"offset" INTEGER NOT NULL, \n'
    '\tPRIMARY KEY (source)\n'
    ')',
    'CREATE TABLE engine_state (\n'
    '\t"key" TEXT NOT NULL, \n'
    '\tvalue INTEGER NOT NULL, \n'
    '\tPRIMARY KEY ("key")\n'
    ')',
    'CREATE VIEW live_backlogs AS \n'
    '        SELECT b.id AS alarm_id, b.directive_id, b.title, b.current_stage, '
    'b.highest_stage,\n'
    '               (SELECT count(*) FROM stage_events e\n'
    '                 WHERE e.backlog_id = b.id AND e.stage = b.current_stage) AS '
    'stage_events,\n'
    "               json_extract(s.rule, '$.occurrence') AS stage_occurrence,\n"
    '               b.risk, b.risk_class, b.src_ips, b.dst_ips, b.created_time, '
    'b.update_time,\n'
    '               b.deadline AS expires_at\n'
    '          FROM backlogs b\n'
    '          JOIN stages s ON s.backlog_id = b.id AND s.stage = b.current_stage\n'
    "         WHERE b.state = 'live'",
    'CREATE VIEW alarms AS \n'
    '        SELECT id AS alarm_id, directive_id, title, status, tag, risk, '
    'risk_class, state,\n'
    '               created_time, update_time\n'
    '          FROM backlogs\n'
    '         WHERE created_time > 0',
    'CREATE VIEW alarm_events AS \n'
    '        SELECT backlog_id AS alarm_id, stage, event_id FROM stage_events ORDER '
    'BY id',
    'CREATE VIEW alarm_intel AS \n'
    '        SELECT backlog_id AS alarm_id, provider, term, result\n'
    "          FROM enrichments WHERE kind = 'intel'",
    'CREATE VIEW alarm_vulns AS \n'
    '        SELECT backlog_id AS alarm_id, provider, term, result\n'
    "          FROM enrichments WHERE kind = 'vuln'",
    'CREATE TABLE reloads (\n'
    '\tid INTEGER NOT NULL, \n'
    '\tstarted FLOAT NOT NULL, \n'
    '\tseconds FLOAT NOT NULL, \n'
    '\t"trigger" TEXT NOT NULL, \n'
    '\tresult TEXT NOT NULL, \n'
    '\tmessage TEXT NOT NULL, \n'
    '\tconfigs TEXT NOT NULL, \n'
    '\tPRIMARY KEY (id), \n'
    "\tCONSTRAINT reload_result CHECK (result IN ('success', 'failure'))\n"
    ')',
    'CREATE INDEX ix_reloads_started ON reloads (started)',
    'CREATE TABLE reload_files (\n'
    '\treload_id INTEGER NOT NULL, \n'
    '\tfile TEXT NOT NULL, \n'
    '\tsha256 TEXT NOT NULL, \n'
    '\tPRIMARY KEY (reload_id, file), \n'
    '\tFOREIGN KEY(reload_id) REFERENCES reloads (id) ON DELETE CASCADE\n'
    ')',
    'CREATE VIEW config_reloads AS \n'
    '        SELECT r.id AS reload_id,\n'
    "               strftime('%Y-%m-%dT%H:%M:%fZ', r.started, 'unixepoch') AS time,\n"
    '               r.trigger, r.result, r.message, r.configs,\n'
    '               (SELECT json_group_object(f.file, f.sha256) FROM reload_files f\n'
    '                 WHERE f.reload_id = r.id) AS files,\n'
    '               r.seconds\n'
    '          FROM reloads r ORDER BY r.id',
    'CREATE TABLE suppression_entries (\n'
    '\tid INTEGER NOT NULL, \n'
    '\tdirective_id INTEGER, \n'
    '\tsrc TEXT, \n'
    '\tdst TEXT, \n'
    '\tcustom_data TEXT, \n'
    '\treason TEXT NOT NULL, \n'
    '\tadded_by TEXT NOT NULL, \n'
    '\tcreated INTEGER NOT NULL, \n'
    '\texpires INTEGER, \n'
    '\thits INTEGER NOT NULL, \n'
    '\tlast_hit INTEGER, \n'
    '\tremoved INTEGER, \n'
    '\tPRIMARY KEY (id)\n'
    ')',
    'CREATE VIEW suppressions AS \n'
    '        SELECT s.id,\n'
    '               s.directive_id,\n'
    '               s.src,\n'
    '               s.dst,\n'
    '               s.custom_data,\n'
    '               s.reason,\n'
    '               s.added_by,\n'
    "               strftime('%Y-%m-%dT%H:%M:%SZ', s.created, 'unixepoch') AS "
    'created,\n'
    "               strftime('%Y-%m-%dT%H:%M:%SZ', s.expires, 'unixepoch') AS "
    'expires,\n'
    "               CASE WHEN s.removed IS NOT NULL THEN 'removed'\n"
    '                    WHEN s.expires IS NOT NULL AND s.expires <= unixepoch() '
    "THEN 'expired'\n"
    "                    ELSE 'active' END AS state,\n"
    '               CASE WHEN s.removed IS NULL AND s.expires IS NOT NULL\n'
    '                    THEN max(0, s.expires - unixepoch()) END AS seconds_left,\n'
    '               s.hits,\n'
    "               strftime('%Y-%m-%dT%H:%M:%SZ', s.last_hit, 'unixepoch') AS "
    'last_hit,\n'
    "               strftime('%Y-%m-%dT%H:%M:%SZ', s.removed, 'unixepoch') AS "
    'removed\n'
    '          FROM suppression_entries s ORDER BY s.id',
)
