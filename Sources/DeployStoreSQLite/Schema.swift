import GRDB

/// The schema, as an append-only list of migrations. `PRAGMA user_version` records how many have run;
/// they run inside the same IMMEDIATE transaction that checks the version, so processes that open a new
/// file at the same moment cannot both apply one. Never edit a migration that has shipped: append a new one.
enum Schema {
    static let migrations: [@Sendable (Database) throws -> Void] = [
        v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, v11, v12, v13, v14,
    ]

    /// The next `seq` of a deployment or revision is `MAX(seq) + 1`, which without an index on `seq` read an index of
    /// the whole table on every create-deployment (775 µs over 10,000 deployments; 13 µs with this one).
    static func v14(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE INDEX IF NOT EXISTS deployments_by_seq ON deployments(seq);
                CREATE INDEX IF NOT EXISTS revisions_by_seq ON revisions(seq);
                """)
    }

    /// A group's deployments by status: "is one active?" (every create-deployment asks) and "the newest succeeded"
    /// walked every deployment of the group without it when none matched.
    static func v13(_ db: Database) throws {
        try db.execute(sql: "CREATE INDEX IF NOT EXISTS deployments_by_group_status ON deployments(group_id, status, create_time, seq)")
    }

    /// Topics, their HTTP(S) subscriptions, and the deliveries of what is published to them (an outbox written in
    /// the transaction of the change a trigger announces), with every attempt.
    static func v12(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE topics (
                    arn TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    created REAL NOT NULL
                );
                CREATE TABLE subscriptions (
                    arn TEXT PRIMARY KEY,
                    topic_arn TEXT NOT NULL REFERENCES topics(arn) ON DELETE CASCADE,
                    protocol TEXT NOT NULL,
                    endpoint TEXT NOT NULL,
                    confirmed INTEGER NOT NULL,
                    token TEXT NOT NULL,
                    secret TEXT NOT NULL,
                    owner TEXT NOT NULL,
                    created REAL NOT NULL
                );
                CREATE INDEX subscriptions_by_topic ON subscriptions(topic_arn, created);
                CREATE TABLE deliveries (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    message_id TEXT NOT NULL,
                    type TEXT NOT NULL,
                    topic_arn TEXT NOT NULL,
                    subscription_arn TEXT NOT NULL,
                    endpoint TEXT NOT NULL,
                    subject TEXT,
                    message TEXT NOT NULL,
                    created REAL NOT NULL,
                    state TEXT NOT NULL,
                    attempts INTEGER NOT NULL,
                    next_attempt REAL NOT NULL,
                    last_error TEXT,
                    origin TEXT NOT NULL,
                    deployment_id TEXT
                );
                CREATE INDEX deliveries_due ON deliveries(state, next_attempt);
                CREATE INDEX deliveries_by_subscription ON deliveries(subscription_arn, state, id);
                CREATE TABLE delivery_attempts (
                    delivery_id INTEGER NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
                    attempt INTEGER NOT NULL,
                    time REAL NOT NULL,
                    milliseconds INTEGER NOT NULL,
                    status INTEGER,
                    error TEXT,
                    PRIMARY KEY (delivery_id, attempt)
                );
                """)
    }

    /// What an evaluated alarm watches (AlarmDefinition as JSON; empty for a manual alarm).
    static func v11(_ db: Database) throws {
        try db.execute(sql: "ALTER TABLE alarms ADD COLUMN definition TEXT NOT NULL DEFAULT ''")
    }

    /// Alarms deployments watch (`alarmConfiguration`), defined once server-wide, with their state.
    static func v10(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE alarms (
                    name TEXT PRIMARY KEY,
                    kind TEXT NOT NULL,
                    state TEXT NOT NULL,
                    reason TEXT NOT NULL,
                    updated REAL NOT NULL
                );
                """)
    }

    /// The event stream (an outbox): one row per state change, in the transaction of the change. AUTOINCREMENT, so
    /// a sequence number is never given twice, even after rows are deleted; readers follow it by `sequence`.
    static func v9(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE events (
                    sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                    time REAL NOT NULL,
                    deployment_id TEXT NOT NULL,
                    application_name TEXT NOT NULL,
                    instance_name TEXT,
                    body TEXT NOT NULL
                );
                CREATE INDEX events_by_deployment ON events(deployment_id, sequence);
                CREATE INDEX events_by_application ON events(application_name, sequence);
                """)
    }

    /// When each instance's agent was last heard from (`deployctl agent list`, the `--wait` view).
    static func v8(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE agent_contacts (
                    instance_name TEXT PRIMARY KEY,
                    last_seen REAL NOT NULL,
                    address TEXT NOT NULL,
                    agent TEXT NOT NULL
                );
                """)
    }

    /// Target statuses counted per deployment, kept by triggers in the transaction that changes a target: the control
    /// plane reads them on every event of a deployment, and counting 1,000 target rows (each with its events) each
    /// time was the largest cost of a fleet deployment. Zero counts stay as rows; readers skip them.
    static func v7(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE deployment_target_counts (
                    deployment_id TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
                    status TEXT NOT NULL,
                    n INTEGER NOT NULL,
                    PRIMARY KEY (deployment_id, status)
                ) WITHOUT ROWID;
                INSERT INTO deployment_target_counts (deployment_id, status, n)
                    SELECT deployment_id, status, COUNT(*) FROM deployment_targets GROUP BY deployment_id, status;
                CREATE TRIGGER deployment_targets_counted_on_insert AFTER INSERT ON deployment_targets BEGIN
                    INSERT INTO deployment_target_counts (deployment_id, status, n) VALUES (NEW.deployment_id, NEW.status, 1)
                        ON CONFLICT (deployment_id, status) DO UPDATE SET n = n + 1;
                END;
                CREATE TRIGGER deployment_targets_counted_on_delete AFTER DELETE ON deployment_targets BEGIN
                    UPDATE deployment_target_counts SET n = n - 1 WHERE deployment_id = OLD.deployment_id AND status = OLD.status;
                END;
                CREATE TRIGGER deployment_targets_counted_on_update AFTER UPDATE OF status ON deployment_targets
                    WHEN OLD.status IS NOT NEW.status BEGIN
                    UPDATE deployment_target_counts SET n = n - 1 WHERE deployment_id = OLD.deployment_id AND status = OLD.status;
                    INSERT INTO deployment_target_counts (deployment_id, status, n) VALUES (NEW.deployment_id, NEW.status, 1)
                        ON CONFLICT (deployment_id, status) DO UPDATE SET n = n + 1;
                END;
                """)
    }

    /// Agents poll by instance: their targets are found through an index, not by reading every deployment's targets;
    /// overdue commands are found by deadline (a fleet has a thousand outstanding at once).
    static func v6(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE INDEX deployment_targets_by_target ON deployment_targets(target_id, status);
                CREATE INDEX host_commands_by_deadline ON host_commands(deadline);
                """)
    }

    /// Access keys of `deployctl server` (the secret is needed to verify SigV4, so it is stored as is; the file is 0600).
    static func v5(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE access_keys (
                    access_key_id TEXT PRIMARY KEY,
                    user_name TEXT NOT NULL,
                    secret_access_key TEXT NOT NULL,
                    status TEXT NOT NULL,
                    role TEXT NOT NULL,
                    create_time REAL NOT NULL
                );
                CREATE INDEX access_keys_by_user ON access_keys(user_name, create_time);
                """)
    }

    /// Explicit creation order for deployments and revisions (it was SQLite's rowid, which another store does not
    /// have): ties between equal creation times are broken by `seq`.
    static func v4(_ db: Database) throws {
        try db.execute(
            sql: """
                ALTER TABLE deployments ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
                UPDATE deployments SET seq = rowid;
                CREATE INDEX deployments_by_group_seq ON deployments(group_id, create_time, seq);
                ALTER TABLE revisions ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
                UPDATE revisions SET seq = rowid;
                """)
    }

    /// One running agent per instance and state file: the lease an agent holds while it runs.
    static func v3(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE agent_leases (
                    instance_name TEXT PRIMARY KEY,
                    holder TEXT NOT NULL,
                    host_name TEXT NOT NULL,
                    pid INTEGER NOT NULL,
                    started REAL NOT NULL,
                    expires REAL NOT NULL
                );
                """)
    }

    /// Host commands handed to agents: one lifecycle event of one target, until the agent completes it.
    static func v2(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE host_commands (
                    id TEXT PRIMARY KEY,
                    deployment_id TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
                    instance_name TEXT NOT NULL,
                    event_name TEXT NOT NULL,
                    acknowledged INTEGER NOT NULL DEFAULT 0,
                    deadline REAL NOT NULL,
                    UNIQUE (deployment_id, instance_name)
                );
                CREATE INDEX host_commands_by_instance ON host_commands(instance_name);
                """)
    }

    static func v1(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE applications (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL UNIQUE,
                    compute_platform TEXT NOT NULL,
                    create_time REAL NOT NULL
                );
                CREATE TABLE deployment_configs (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL UNIQUE,
                    info TEXT NOT NULL,
                    create_time REAL NOT NULL
                );
                CREATE TABLE deployment_groups (
                    id TEXT PRIMARY KEY,
                    application_id TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
                    name TEXT NOT NULL,
                    config_name TEXT NOT NULL,
                    info TEXT NOT NULL,
                    UNIQUE (application_id, name)
                );
                CREATE INDEX deployment_groups_by_config ON deployment_groups(config_name);
                CREATE TABLE instances (
                    name TEXT PRIMARY KEY,
                    registered INTEGER NOT NULL,
                    info TEXT NOT NULL
                );
                CREATE TABLE instance_tags (
                    instance_name TEXT NOT NULL REFERENCES instances(name) ON DELETE CASCADE,
                    key TEXT NOT NULL,
                    value TEXT NOT NULL,
                    position INTEGER NOT NULL,
                    PRIMARY KEY (instance_name, key)
                );
                CREATE TABLE revisions (
                    application_id TEXT NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
                    location_key TEXT NOT NULL,
                    location TEXT NOT NULL,
                    description TEXT,
                    register_time REAL NOT NULL,
                    first_used_time REAL,
                    last_used_time REAL,
                    deployment_groups TEXT NOT NULL DEFAULT '[]',
                    PRIMARY KEY (application_id, location_key)
                );
                CREATE TABLE deployments (
                    id TEXT PRIMARY KEY,
                    application_id TEXT NOT NULL,
                    group_id TEXT NOT NULL,
                    status TEXT NOT NULL,
                    create_time REAL NOT NULL,
                    info TEXT NOT NULL
                );
                CREATE INDEX deployments_by_group ON deployments(group_id, create_time);
                CREATE INDEX deployments_by_status ON deployments(status, create_time);
                CREATE INDEX deployments_by_time ON deployments(create_time);
                CREATE TABLE deployment_targets (
                    deployment_id TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
                    target_id TEXT NOT NULL,
                    position INTEGER NOT NULL,
                    status TEXT NOT NULL,
                    info TEXT NOT NULL,
                    PRIMARY KEY (deployment_id, target_id)
                );
                CREATE TABLE resource_tags (
                    resource_id TEXT NOT NULL,
                    key TEXT NOT NULL,
                    value TEXT NOT NULL,
                    position INTEGER NOT NULL,
                    PRIMARY KEY (resource_id, key)
                );
                """)
    }
}
