/// The PostgreSQL schema, as an append-only list of migrations like the state file's (`Schema` in
/// DeployStoreSQLite): `deployctl_schema.version` records how many have run. They run in one transaction that first
/// takes an advisory lock, so replicas starting at the same moment apply each migration once: the others wait on
/// the lock, then find the version already moved. Never edit a migration that has shipped: append a new one.
///
/// The tables mirror the state file's (same names, columns and JSON in `info`), so `deployctl migrate` copies
/// records between the two through the store protocol, and the SQL of both stores reads alike. Times are seconds
/// since 1970 in `double precision`; flags are integers 0 and 1, as in SQLite; text compares by byte (`COLLATE "C"`),
/// as in SQLite, so every list is in the same order on both.
enum PostgresSchema {
    /// The advisory lock key of migrations ("dcmigrate" folded into 63 bits).
    static let migrationLock: Int64 = 0x64_63_6d_69_67_72_61

    static let migrations: [String] = [v1, v2]

    static func migrate(_ connection: PostgresConnection) throws(PostgresError) {
        try connection.run("BEGIN")
        do throws(PostgresError) {
            try connection.query("SELECT pg_advisory_xact_lock($1::bigint)", [migrationLock])
            try connection.run("CREATE TABLE IF NOT EXISTS deployctl_schema (version integer NOT NULL)")
            let rows = try connection.query("SELECT version FROM deployctl_schema").rows
            let version: Int
            if let row = rows.first {
                version = row.int(0)
            } else {
                try connection.run("INSERT INTO deployctl_schema (version) VALUES (0)")
                version = 0
            }
            if version > migrations.count {
                throw PostgresError(
                    sqlState: nil,
                    message:
                        "the database's schema is version \(version), newer than this deployctl knows (\(migrations.count)): upgrade deployctl on this host"
                )
            }
            for index in version..<migrations.count {
                try connection.run(migrations[index])
            }
            if version < migrations.count {
                try connection.query("UPDATE deployctl_schema SET version = $1::integer", [migrations.count])
            }
            try connection.run("COMMIT")
        } catch {
            try? connection.run("ROLLBACK")
            throw error
        }
    }

    /// The whole of the state file's schema at its version 14. The tables a deployment updates on every event (its row,
    /// its targets', counts and commands, the event counter) leave room in each page (fillfactor 70), so an update
    /// that changes no indexed column stays on its page (a HOT update, no index writes), and are vacuumed early: a
    /// 1,000-agent deployment updates the deployment's row about 20,000 times.
    static let v1 = """
        CREATE TABLE applications (
            id text COLLATE "C" PRIMARY KEY,
            name text COLLATE "C" NOT NULL UNIQUE,
            compute_platform text COLLATE "C" NOT NULL,
            create_time double precision NOT NULL
        );
        CREATE TABLE deployment_configs (
            id text COLLATE "C" PRIMARY KEY,
            name text COLLATE "C" NOT NULL UNIQUE,
            info text COLLATE "C" NOT NULL,
            create_time double precision NOT NULL
        );
        CREATE TABLE deployment_groups (
            id text COLLATE "C" PRIMARY KEY,
            application_id text COLLATE "C" NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
            name text COLLATE "C" NOT NULL,
            config_name text COLLATE "C" NOT NULL,
            info text COLLATE "C" NOT NULL,
            UNIQUE (application_id, name)
        );
        CREATE INDEX deployment_groups_by_config ON deployment_groups(config_name);
        CREATE TABLE instances (
            name text COLLATE "C" PRIMARY KEY,
            registered integer NOT NULL,
            info text COLLATE "C" NOT NULL
        );
        CREATE TABLE instance_tags (
            instance_name text COLLATE "C" NOT NULL REFERENCES instances(name) ON DELETE CASCADE,
            key text COLLATE "C" NOT NULL,
            value text COLLATE "C" NOT NULL,
            position integer NOT NULL,
            PRIMARY KEY (instance_name, key)
        );
        CREATE TABLE resource_tags (
            resource_id text COLLATE "C" NOT NULL,
            key text COLLATE "C" NOT NULL,
            value text COLLATE "C" NOT NULL,
            position integer NOT NULL,
            PRIMARY KEY (resource_id, key)
        );
        CREATE TABLE revisions (
            application_id text COLLATE "C" NOT NULL REFERENCES applications(id) ON DELETE CASCADE,
            location_key text COLLATE "C" NOT NULL,
            location text COLLATE "C" NOT NULL,
            description text COLLATE "C",
            register_time double precision NOT NULL,
            first_used_time double precision,
            last_used_time double precision,
            deployment_groups text COLLATE "C" NOT NULL DEFAULT '[]',
            seq bigint NOT NULL,
            PRIMARY KEY (application_id, location_key)
        );
        CREATE INDEX revisions_by_seq ON revisions(seq);
        CREATE TABLE deployments (
            id text COLLATE "C" PRIMARY KEY,
            application_id text COLLATE "C" NOT NULL,
            group_id text COLLATE "C" NOT NULL,
            status text COLLATE "C" NOT NULL,
            create_time double precision NOT NULL,
            info text COLLATE "C" NOT NULL,
            seq bigint NOT NULL
        ) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 200);
        CREATE INDEX deployments_by_group_seq ON deployments(group_id, create_time, seq);
        CREATE INDEX deployments_by_group_status ON deployments(group_id, status, create_time, seq);
        CREATE INDEX deployments_by_status ON deployments(status, create_time);
        CREATE INDEX deployments_by_time ON deployments(create_time);
        CREATE INDEX deployments_by_seq ON deployments(seq);
        CREATE TABLE deployment_targets (
            deployment_id text COLLATE "C" NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
            target_id text COLLATE "C" NOT NULL,
            position integer NOT NULL,
            status text COLLATE "C" NOT NULL,
            info text COLLATE "C" NOT NULL,
            PRIMARY KEY (deployment_id, target_id)
        ) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 200);
        CREATE INDEX deployment_targets_by_target ON deployment_targets(target_id, status);
        -- Target statuses counted per deployment, kept by a trigger in the transaction that changes a target (as the
        -- state file's v7): the control plane reads them on every event of a deployment, and counting 1,000 targets
        -- each time was a third of the database's time in a 1,000-agent deployment. Zero counts stay as rows.
        CREATE TABLE deployment_target_counts (
            deployment_id text COLLATE "C" NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
            status text COLLATE "C" NOT NULL,
            n integer NOT NULL,
            PRIMARY KEY (deployment_id, status)
        ) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 200);
        CREATE FUNCTION deployment_targets_counted() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                UPDATE deployment_target_counts SET n = n - 1 WHERE deployment_id = OLD.deployment_id AND status = OLD.status;
            END IF;
            IF TG_OP IN ('UPDATE', 'INSERT') THEN
                INSERT INTO deployment_target_counts (deployment_id, status, n) VALUES (NEW.deployment_id, NEW.status, 1)
                    ON CONFLICT (deployment_id, status) DO UPDATE SET n = deployment_target_counts.n + 1;
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER deployment_targets_counted_on_insert_or_delete AFTER INSERT OR DELETE ON deployment_targets
            FOR EACH ROW EXECUTE FUNCTION deployment_targets_counted();
        CREATE TRIGGER deployment_targets_counted_on_update AFTER UPDATE OF status ON deployment_targets
            FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION deployment_targets_counted();
        CREATE TABLE host_commands (
            id text COLLATE "C" PRIMARY KEY,
            deployment_id text COLLATE "C" NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
            instance_name text COLLATE "C" NOT NULL,
            event_name text COLLATE "C" NOT NULL,
            acknowledged integer NOT NULL DEFAULT 0,
            deadline double precision NOT NULL,
            UNIQUE (deployment_id, instance_name)
        ) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 200);
        CREATE INDEX host_commands_by_instance ON host_commands(instance_name);
        CREATE INDEX host_commands_by_deadline ON host_commands(deadline);
        CREATE TABLE agent_leases (
            instance_name text COLLATE "C" PRIMARY KEY,
            holder text COLLATE "C" NOT NULL,
            host_name text COLLATE "C" NOT NULL,
            pid integer NOT NULL,
            started double precision NOT NULL,
            expires double precision NOT NULL
        );
        CREATE TABLE access_keys (
            access_key_id text COLLATE "C" PRIMARY KEY,
            user_name text COLLATE "C" NOT NULL,
            secret_access_key text COLLATE "C" NOT NULL,
            status text COLLATE "C" NOT NULL,
            role text COLLATE "C" NOT NULL,
            create_time double precision NOT NULL
        );
        CREATE INDEX access_keys_by_user ON access_keys(user_name, create_time);
        CREATE TABLE agent_contacts (
            instance_name text COLLATE "C" PRIMARY KEY,
            last_seen double precision NOT NULL,
            address text COLLATE "C" NOT NULL,
            agent text COLLATE "C" NOT NULL
        );
        CREATE TABLE events (
            sequence bigint PRIMARY KEY,
            time double precision NOT NULL,
            deployment_id text COLLATE "C" NOT NULL,
            application_name text COLLATE "C" NOT NULL,
            instance_name text COLLATE "C",
            body text COLLATE "C" NOT NULL
        );
        CREATE INDEX events_by_deployment ON events(deployment_id, sequence);
        CREATE INDEX events_by_application ON events(application_name, sequence);
        -- The last sequence number given (never reused, even once its rows are deleted, like SQLite's AUTOINCREMENT).
        CREATE TABLE event_sequence (last bigint NOT NULL) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 200);
        INSERT INTO event_sequence (last) VALUES (0);
        CREATE TABLE alarms (
            name text COLLATE "C" PRIMARY KEY,
            kind text COLLATE "C" NOT NULL,
            state text COLLATE "C" NOT NULL,
            reason text COLLATE "C" NOT NULL,
            updated double precision NOT NULL,
            definition text COLLATE "C" NOT NULL DEFAULT ''
        );
        CREATE TABLE topics (
            arn text COLLATE "C" PRIMARY KEY,
            name text COLLATE "C" NOT NULL,
            created double precision NOT NULL
        );
        CREATE TABLE subscriptions (
            arn text COLLATE "C" PRIMARY KEY,
            topic_arn text COLLATE "C" NOT NULL REFERENCES topics(arn) ON DELETE CASCADE,
            protocol text COLLATE "C" NOT NULL,
            endpoint text COLLATE "C" NOT NULL,
            confirmed integer NOT NULL,
            token text COLLATE "C" NOT NULL,
            secret text COLLATE "C" NOT NULL,
            owner text COLLATE "C" NOT NULL,
            created double precision NOT NULL,
            seq bigserial
        );
        CREATE INDEX subscriptions_by_topic ON subscriptions(topic_arn, created);
        CREATE TABLE deliveries (
            id bigserial PRIMARY KEY,
            message_id text COLLATE "C" NOT NULL,
            type text COLLATE "C" NOT NULL,
            topic_arn text COLLATE "C" NOT NULL,
            subscription_arn text COLLATE "C" NOT NULL,
            endpoint text COLLATE "C" NOT NULL,
            subject text COLLATE "C",
            message text COLLATE "C" NOT NULL,
            created double precision NOT NULL,
            state text COLLATE "C" NOT NULL,
            attempts integer NOT NULL,
            next_attempt double precision NOT NULL,
            last_error text COLLATE "C",
            origin text COLLATE "C" NOT NULL,
            deployment_id text COLLATE "C"
        );
        CREATE INDEX deliveries_due ON deliveries(state, next_attempt);
        CREATE INDEX deliveries_by_subscription ON deliveries(subscription_arn, state, id);
        CREATE TABLE delivery_attempts (
            delivery_id bigint NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
            attempt integer NOT NULL,
            time double precision NOT NULL,
            milliseconds integer NOT NULL,
            status integer,
            error text COLLATE "C",
            PRIMARY KEY (delivery_id, attempt)
        );
        """

    /// A lower bound of every host command's deadline, in one row, for the polls' and the clock's "has any deadline
    /// passed?" (``PostgresTransaction/hasOverdueCommands(now:)``). A trigger lowers it whenever a command gets an
    /// earlier deadline; a sweep that finds it passed sets it to the earliest deadline there is. Deletions leave it
    /// low, which only costs one sweep that finds nothing. It stays at or below every deadline.
    static let v2 = """
        CREATE TABLE host_command_deadline (next double precision NOT NULL)
            WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_threshold = 200);
        INSERT INTO host_command_deadline SELECT COALESCE(MIN(deadline), 'Infinity') FROM host_commands;
        CREATE FUNCTION host_command_deadline_lowered() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            UPDATE host_command_deadline SET next = NEW.deadline WHERE next > NEW.deadline;
            RETURN NULL;
        END $$;
        CREATE TRIGGER host_commands_lower_deadline AFTER INSERT OR UPDATE OF deadline ON host_commands
            FOR EACH ROW EXECUTE FUNCTION host_command_deadline_lowered();
        """
}
