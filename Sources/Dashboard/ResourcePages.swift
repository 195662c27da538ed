import ControlPlane
import DeployModel
import Foundation

extension Dashboard {
    /// The sign-in form: an access key id and secret, checked once by the server, which then sets a session cookie.
    public static func signIn(error: String?) -> String {
        var body = "<h1>Sign in</h1>"
        if let error { body += "<div class=\"error\" role=\"alert\">\(HTML.escape(error))</div>" }
        body += """
            <form method="post" action="/ui/signin" class="signin">
            <p><label for="key">Access key ID</label><input id="key" name="accessKeyId" autocomplete="username" required autofocus></p>
            <p><label for="secret">Secret access key</label><input id="secret" name="secretAccessKey" type="password" autocomplete="current-password" required></p>
            <p><button type="submit">Sign in</button></p></form>
            <p><small>Any key of deployctl server (deployctl create-access-key); what you may do follows its role.</small></p>
            """
        return Layout.page(title: "Sign in", viewer: nil, body: body)
    }

    /// A page that says what went wrong, in the layout.
    public static func message(_ title: String, _ text: String, viewer: Viewer?) -> String {
        Layout.page(title: title, viewer: viewer, body: "<h1>\(HTML.escape(title))</h1><p>\(HTML.escape(text))</p>")
    }

    /// Every application with its groups (configuration and last deployment) and its revisions (where deployed).
    public func applications(viewer: Viewer) throws -> String {
        var body = "<h1>Applications</h1>"
        let names = try plane.listApplications(ListApplicationsInput()).applications ?? []
        if names.isEmpty { body += "<p>No applications yet (deployctl create-application).</p>" }
        for name in names {
            body += "<section id=\"app-\(HTML.escape(HTML.component(name)))\"><h2>\(HTML.escape(name))</h2>"
            let groupNames = try plane.listDeploymentGroups(ListDeploymentGroupsInput(applicationName: name)).deploymentGroups ?? []
            var groups: [DeploymentGroupInfo] = []
            for chunk in groupNames.chunks(of: 25) {
                groups +=
                    try plane.batchGetDeploymentGroups(BatchGetDeploymentGroupsInput(applicationName: name, deploymentGroupNames: chunk))
                    .deploymentGroupsInfo ?? []
            }
            if groups.isEmpty {
                body += "<p>No deployment groups.</p>"
            } else {
                body += "<div class=\"scroll\"><table><thead><tr><th scope=\"col\">Group</th><th scope=\"col\">Configuration</th>"
                body += "<th scope=\"col\">Style</th><th scope=\"col\">Last deployment</th></tr></thead><tbody>"
                for group in groups {
                    let groupName = group.deploymentGroupName ?? ""
                    body += "<tr><th scope=\"row\"><a href=\"/ui/applications/\(HTML.component(name))/groups/\(HTML.component(groupName))\">"
                    body += "\(HTML.escape(groupName))</a></th><td>\(HTML.escape(group.deploymentConfigName ?? ""))</td>"
                    body += "<td>\(HTML.escape(group.deploymentStyle?.deploymentType?.rawValue ?? "IN_PLACE"))</td><td>"
                    if let last = group.lastAttemptedDeployment, let id = last.deploymentId {
                        body += "<a href=\"/ui/deployments/\(HTML.component(id))\">\(HTML.escape(id))</a> \(HTML.status(last.status?.rawValue))"
                    } else {
                        body += "—"
                    }
                    body += "</td></tr>"
                }
                body += "</tbody></table></div>"
            }
            body += try revisions(name)
            body += "</section>"
        }
        return Layout.page(title: "Applications", viewer: viewer, current: "applications", body: body)
    }

    /// The application's newest revisions (at most 25) and the groups each went to.
    func revisions(_ application: String) throws -> String {
        let locations = Array(
            (try plane.listApplicationRevisions(ListApplicationRevisionsInput(applicationName: application)).revisions ?? []).suffix(25))
        guard !locations.isEmpty else { return "" }
        let infos =
            try plane.batchGetApplicationRevisions(BatchGetApplicationRevisionsInput(applicationName: application, revisions: locations))
            .revisions ?? []
        var html = "<h3>Revisions</h3><ul class=\"revisions\">"
        for info in infos.reversed() {
            let groups = info.genericRevisionInfo?.deploymentGroups ?? []
            html += "<li><span class=\"mono\">\(HTML.escape(HTML.revision(info.revisionLocation)))</span> — "
            html += groups.isEmpty ? "not deployed" : "deployed to \(HTML.escape(groups.joined(separator: ", ")))"
            html += " <small>(registered \(HTML.time(info.genericRevisionInfo?.registerTime)))</small></li>"
        }
        return html + "</ul>"
    }

    /// A group: its configuration, the instances its tags match, and its deployments.
    public func group(application: String, name: String, viewer: Viewer) throws -> String? {
        guard
            let group = try? plane.getDeploymentGroup(GetDeploymentGroupInput(applicationName: application, deploymentGroupName: name))
                .deploymentGroupInfo
        else { return nil }
        var body = "<h1>\(HTML.escape(application)) / \(HTML.escape(name))</h1><dl class=\"facts\">"
        body += fact("Deployment configuration", HTML.escape(group.deploymentConfigName ?? ""))
        body += fact(
            "Style",
            HTML.escape(
                "\(group.deploymentStyle?.deploymentType?.rawValue ?? "IN_PLACE"), \(group.deploymentStyle?.deploymentOption?.rawValue ?? "WITHOUT_TRAFFIC_CONTROL")"
            ))
        let filters = (group.onPremisesInstanceTagFilters ?? []).map { "\($0.key ?? "")=\($0.value ?? "") (\($0.type?.rawValue ?? ""))" }
        body += fact("Tag filters", HTML.escape(filters.isEmpty ? "none" : filters.joined(separator: ", ")))
        let balancers =
            (group.loadBalancerInfo?.targetGroupInfoList ?? []).compactMap(\.name) + (group.loadBalancerInfo?.elbInfoList ?? []).compactMap(\.name)
        if !balancers.isEmpty { body += fact("Load balancer backends", HTML.escape(balancers.joined(separator: ", "))) }
        let rollback = group.autoRollbackConfiguration
        body += fact(
            "Automatic rollback",
            HTML.escape(rollback?.enabled == true ? (rollback?.events ?? []).map(\.rawValue).joined(separator: ", ") : "off"))
        let alarms = group.alarmConfiguration?.alarms?.compactMap(\.name) ?? []
        body += fact("Alarms", HTML.escape(group.alarmConfiguration?.enabled == true && !alarms.isEmpty ? alarms.joined(separator: ", ") : "none"))
        let triggers = (group.triggerConfigurations ?? []).map { "\($0.triggerName ?? "") → \($0.triggerTargetArn ?? "")" }
        body += fact("Triggers", HTML.escape(triggers.isEmpty ? "none" : triggers.joined(separator: "; ")))
        if let filters = group.onPremisesInstanceTagFilters, !filters.isEmpty {
            let matching =
                try plane.listOnPremisesInstances(ListOnPremisesInstancesInput(registrationStatus: .registered, tagFilters: filters))
                .instanceNames ?? []
            body += fact(
                "Matching instances",
                matching.isEmpty
                    ? "none" : matching.map { "<a href=\"/ui/instances/\(HTML.component($0))\">\(HTML.escape($0))</a>" }.joined(separator: ", "))
        }
        body += "</dl><h2>Deployments</h2>"
        let ids = Array(
            (try plane.listDeployments(ListDeploymentsInput(applicationName: application, deploymentGroupName: name)).deployments ?? []).prefix(25))
        var infos: [DeploymentInfo] = []
        if !ids.isEmpty { infos = try plane.batchGetDeployments(BatchGetDeploymentsInput(deploymentIds: ids)).deploymentsInfo ?? [] }
        if infos.isEmpty { body += "<p>None yet.</p>" }
        body +=
            "<ul>"
            + infos.map { info in
                let id = info.deploymentId ?? ""
                return "<li><a href=\"/ui/deployments/\(HTML.component(id))\">\(HTML.escape(id))</a> \(HTML.status(info.status?.rawValue)) "
                    + "<span class=\"mono\">\(HTML.escape(HTML.revision(info.revision)))</span> <small>\(HTML.time(info.createTime))</small></li>"
            }.joined() + "</ul>"
        if infos.count == 25 {
            body += "<p><a href=\"/ui/deployments?application=\(HTML.component(application))&amp;group=\(HTML.component(name))\">All of them</a></p>"
        }
        return Layout.page(title: "\(application) / \(name)", viewer: viewer, current: "applications", body: body)
    }

    /// Every instance: registration, tags, and its agent (last contact, version, the event it runs).
    public func instances(_ query: [String: String] = [:], viewer: Viewer) throws -> String {
        let page = try plane.listOnPremisesInstances(ListOnPremisesInstancesInput(nextToken: query["next"].flatMap { $0.isEmpty ? nil : $0 }))
        let names = page.instanceNames ?? []
        var infos: [InstanceInfo] = []
        for chunk in names.chunks(of: 25) {
            infos += try plane.batchGetOnPremisesInstances(BatchGetOnPremisesInstancesInput(instanceNames: chunk)).instanceInfos ?? []
        }
        let presence = Dictionary(try plane.agentPresence(instanceNames: names).map { ($0.instanceName, $0) }, uniquingKeysWith: { a, _ in a })
        var body = "<h1>Instances</h1>"
        if infos.isEmpty { body += "<p>No instances registered yet (deployctl register).</p>" }
        body +=
            "<div class=\"scroll\"><table><thead><tr><th scope=\"col\">Instance</th><th scope=\"col\">Registration</th><th scope=\"col\">Tags</th>"
        body += "<th scope=\"col\">Agent</th><th scope=\"col\">Last contact</th><th scope=\"col\">Running</th></tr></thead><tbody>"
        for info in infos {
            let name = info.instanceName ?? ""
            let agent = presence[name]
            let tags = (info.tags ?? []).map { "\($0.key ?? "")=\($0.value ?? "")" }.joined(separator: ", ")
            body += "<tr><th scope=\"row\"><a href=\"/ui/instances/\(HTML.component(name))\">\(HTML.escape(name))</a></th>"
            body +=
                "<td>\(info.deregisterTime == nil ? "Registered \(HTML.time(info.registerTime))" : "Deregistered \(HTML.time(info.deregisterTime))")</td>"
            body += "<td>\(HTML.escape(tags))</td><td>\(HTML.status(agent?.status.rawValue))<small> \(HTML.escape(agent?.agent ?? ""))</small></td>"
            body += "<td>\(HTML.time(agent?.lastSeen))</td><td>\(HTML.escape(agent?.lifecycleEventName ?? "—"))</td></tr>"
        }
        body += "</tbody></table></div>"
        if let next = page.nextToken {
            body += "<p><a href=\"/ui/instances?next=\(HTML.escape(HTML.component(next)))\" rel=\"next\">More instances</a></p>"
        }
        return Layout.page(title: "Instances", viewer: viewer, current: "instances", body: body)
    }

    /// One instance and the recent deployments (the newest 100) that targeted it.
    public func instance(_ name: String, viewer: Viewer) throws -> String? {
        guard let info = try plane.batchGetOnPremisesInstances(BatchGetOnPremisesInstancesInput(instanceNames: [name])).instanceInfos?.first else {
            return nil
        }
        var body = "<h1>Instance \(HTML.escape(name))</h1><dl class=\"facts\">"
        body += fact("ARN", "<span class=\"mono\">\(HTML.escape(info.instanceArn ?? ""))</span>")
        body += fact("Registered", HTML.time(info.registerTime))
        if info.deregisterTime != nil { body += fact("Deregistered", HTML.time(info.deregisterTime)) }
        body += fact("Tags", HTML.escape((info.tags ?? []).map { "\($0.key ?? "")=\($0.value ?? "")" }.joined(separator: ", ")))
        if let agent = try plane.agentPresence(instanceNames: [name]).first {
            body += fact("Agent", "\(HTML.status(agent.status.rawValue)) \(HTML.escape(agent.agent ?? "")) \(HTML.escape(agent.address ?? ""))")
            body += fact("Last contact", HTML.time(agent.lastSeen))
        }
        body += "</dl><h2>Deployments to it</h2><ul>"
        let ids = Array((try plane.listDeployments(ListDeploymentsInput()).deployments ?? []).prefix(100))
        var found = 0
        for id in ids {
            guard
                let target = try? plane.getDeploymentTarget(GetDeploymentTargetInput(deploymentId: id, targetId: name)).deploymentTarget?
                    .instanceTarget
            else { continue }
            found += 1
            body += "<li><a href=\"/ui/deployments/\(HTML.component(id))\">\(HTML.escape(id))</a> \(HTML.status(target.status?.rawValue)) "
            body += "<small>\(HTML.time(target.lastUpdatedAt))</small></li>"
        }
        body += "</ul>" + (found == 0 ? "<p>None among the newest 100 deployments.</p>" : "")
        return Layout.page(title: name, viewer: viewer, current: "instances", body: body)
    }
}
