import DeployModel
import Foundation
import GRDB

struct ApplicationRow {
    var id: String
    var name: String
    var computePlatform: String
    var createTime: Date

    init(row: Row) {
        id = row["id"]
        name = row["name"]
        computePlatform = row["compute_platform"]
        createTime = Date(timeIntervalSince1970: row["create_time"])
    }

    var info: ApplicationInfo {
        ApplicationInfo(
            applicationId: id, applicationName: name, createTime: createTime, linkedToGitHub: false,
            computePlatform: ComputePlatform(rawValue: computePlatform))
    }
}

extension ControlPlane {
    func findApplication(_ db: Database, _ name: String) throws -> ApplicationRow? {
        try Row.fetchOne(db, sql: "SELECT * FROM applications WHERE name = ?", arguments: [name]).map(ApplicationRow.init)
    }

    func requireApplication(_ db: Database, _ name: String?) throws -> ApplicationRow {
        let name = try Validate.applicationName(name)
        guard let app = try findApplication(db, name) else {
            throw ServiceError("ApplicationDoesNotExistException", "The application \(name) does not exist with the user or AWS account.")
        }
        return app
    }

    public func createApplication(_ input: CreateApplicationInput) throws -> CreateApplicationOutput {
        let name = try Validate.applicationName(input.applicationName)
        let platform = input.computePlatform ?? .server
        guard platform == .server else {
            throw ServiceError(
                "InvalidComputePlatformException",
                "The compute platform \(platform.rawValue) is not supported by deployctl; only Server (EC2/on-premises) is.")
        }
        let tags = try validatedTags(input.tags ?? [], error: "InvalidTagsToAddException")
        return try state.write { db in
            if try findApplication(db, name) != nil {
                throw ServiceError("ApplicationAlreadyExistsException", "The application \(name) already exists with the user or AWS account.")
            }
            let id = Identifier.uuid()
            try db.execute(
                sql: "INSERT INTO applications (id, name, compute_platform, create_time) VALUES (?, ?, ?, ?)",
                arguments: [id, name, platform.rawValue, now().timeIntervalSince1970])
            try replaceTags(db, resourceId: id, adding: tags)
            return CreateApplicationOutput(applicationId: id)
        }
    }

    public func getApplication(_ input: GetApplicationInput) throws -> GetApplicationOutput {
        try state.read { db in
            GetApplicationOutput(application: try requireApplication(db, input.applicationName).info)
        }
    }

    public func listApplications(_ input: ListApplicationsInput) throws -> ListApplicationsOutput {
        try state.read { db in
            let names = try String.fetchAll(db, sql: "SELECT name FROM applications ORDER BY name")
            let (page, next) = try Paging.page(names, token: input.nextToken)
            return ListApplicationsOutput(applications: page, nextToken: next)
        }
    }

    public func batchGetApplications(_ input: BatchGetApplicationsInput) throws -> BatchGetApplicationsOutput {
        try Validate.batch(input.applicationNames, limit: 100, what: "application name", required: "ApplicationNameRequiredException")
        return try state.read { db in
            var infos: [ApplicationInfo] = []
            for name in input.applicationNames {
                infos.append(try requireApplication(db, name).info)
            }
            return BatchGetApplicationsOutput(applicationsInfo: infos)
        }
    }

    public func updateApplication(_ input: UpdateApplicationInput) throws {
        let newName = try Validate.applicationName(input.newApplicationName)
        try state.write { db in
            let app = try requireApplication(db, input.applicationName)
            if newName == app.name { return }
            if try findApplication(db, newName) != nil {
                throw ServiceError("ApplicationAlreadyExistsException", "The application \(newName) already exists with the user or AWS account.")
            }
            try db.execute(sql: "UPDATE applications SET name = ? WHERE id = ?", arguments: [newName, app.id])
        }
    }

    /// Deletes the application with its deployment groups and revisions. Like AWS, a missing application is not an error.
    public func deleteApplication(_ input: DeleteApplicationInput) throws {
        let name = try Validate.applicationName(input.applicationName)
        try state.write { db in
            guard let app = try findApplication(db, name) else { return }
            let groupIds = try String.fetchAll(db, sql: "SELECT id FROM deployment_groups WHERE application_id = ?", arguments: [app.id])
            for id in groupIds + [app.id] {
                try db.execute(sql: "DELETE FROM resource_tags WHERE resource_id = ?", arguments: [id])
            }
            try db.execute(sql: "DELETE FROM applications WHERE id = ?", arguments: [app.id])
        }
    }
}
