import DeployModel
import DeployStore
import Foundation

extension ApplicationRecord {
    var info: ApplicationInfo {
        ApplicationInfo(
            applicationId: id, applicationName: name, createTime: createTime, linkedToGitHub: false,
            computePlatform: ComputePlatform(rawValue: computePlatform))
    }
}

extension ControlPlane {
    func findApplication(_ tx: any StoreTransaction, _ name: String) throws -> ApplicationRecord? {
        try tx.application(named: name)
    }

    func requireApplication(_ tx: any StoreTransaction, _ name: String?) throws -> ApplicationRecord {
        let name = try Validate.applicationName(name)
        guard let app = try findApplication(tx, name) else {
            throw ServiceError("ApplicationDoesNotExistException", "The application \(name) does not exist with the user or AWS account.")
        }
        return app
    }

    public func createApplication(_ input: CreateApplicationInput) throws -> CreateApplicationOutput {
        let name = try Validate.applicationName(input.applicationName)
        // Lambda and ECS applications are stored and returned as AWS does (tools that manage CodeDeploy as code
        // create them); only deployments to them are refused (`createDeployment`).
        let platform = input.computePlatform ?? .server
        let tags = try validatedTags(input.tags ?? [], error: "InvalidTagsToAddException")
        return try store.write { tx in
            if try findApplication(tx, name) != nil {
                throw ServiceError("ApplicationAlreadyExistsException", "The application \(name) already exists with the user or AWS account.")
            }
            let id = Identifier.uuid()
            try tx.insertApplication(ApplicationRecord(id: id, name: name, computePlatform: platform.rawValue, createTime: now()))
            try replaceTags(tx, resourceId: id, adding: tags)
            return CreateApplicationOutput(applicationId: id)
        }
    }

    public func getApplication(_ input: GetApplicationInput) throws -> GetApplicationOutput {
        try store.read { tx in
            GetApplicationOutput(application: try requireApplication(tx, input.applicationName).info)
        }
    }

    public func listApplications(_ input: ListApplicationsInput) throws -> ListApplicationsOutput {
        try store.read { tx in
            let names = try tx.applicationNames()
            let (page, next) = try Paging.page(names, token: input.nextToken)
            return ListApplicationsOutput(applications: page, nextToken: next)
        }
    }

    public func batchGetApplications(_ input: BatchGetApplicationsInput) throws -> BatchGetApplicationsOutput {
        try Validate.batch(input.applicationNames, limit: 100, what: "application name", required: "ApplicationNameRequiredException")
        return try store.read { tx in
            var infos: [ApplicationInfo] = []
            for name in input.applicationNames {
                infos.append(try requireApplication(tx, name).info)
            }
            return BatchGetApplicationsOutput(applicationsInfo: infos)
        }
    }

    public func updateApplication(_ input: UpdateApplicationInput) throws {
        let newName = try Validate.applicationName(input.newApplicationName)
        try store.write { tx in
            let app = try requireApplication(tx, input.applicationName)
            if newName == app.name { return }
            if try findApplication(tx, newName) != nil {
                throw ServiceError("ApplicationAlreadyExistsException", "The application \(newName) already exists with the user or AWS account.")
            }
            try tx.renameApplication(id: app.id, to: newName)
            eventSubjects.forget()
        }
    }

    /// Deletes the application with its deployment groups and revisions. Like AWS, a missing application is not an error.
    public func deleteApplication(_ input: DeleteApplicationInput) throws {
        let name = try Validate.applicationName(input.applicationName)
        try store.write { tx in
            guard let app = try findApplication(tx, name) else { return }
            try tx.deleteApplication(id: app.id)
            eventSubjects.forget()
        }
    }
}
