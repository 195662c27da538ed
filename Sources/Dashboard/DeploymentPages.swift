import ControlPlane
import DeployModel
import Foundation

/// The dashboard's pages, rendered on the server from the same control-plane calls the CLI makes (`listDeployments`,
/// `batchGetDeployments`, `getDeployment`, `batchGetDeploymentTargets`, ...), so a page never disagrees with
/// `get-deployment`. Each render is synchronous store work: the server runs it on its reader threads.
public struct Dashboard: Sendable {
    let plane: ControlPlane

    public init(plane: ControlPlane) { self.plane = plane }

    static let statuses = ["Created", "Queued", "InProgress", "Baking", "Ready", "Succeeded", "Failed", "Stopped"]
    static let actions = ["stop": "StopDeployment", "continue": "ContinueDeployment", "redeploy": "CreateDeployment"]

    /// The operation an action calls (what a role must allow), for `stop`, `continue` and `redeploy`.
    public static func operation(ofAction action: String) -> String? { actions[action] }

    /// Deployments, newest first, a page of at most 100 (`ListDeployments` pages; `BatchGetDeployments` 25 at a time).
    public func deployments(_ query: [String: String], viewer: Viewer) throws -> String {
        let application = query["application"].flatMap { $0.isEmpty ? nil : $0 }
        let group = application == nil ? nil : query["group"].flatMap { $0.isEmpty ? nil : $0 }
        let status = query["status"].flatMap { Self.statuses.contains($0) ? DeploymentStatus(rawValue: $0) : nil }
        let page = try plane.listDeployments(
            ListDeploymentsInput(
                applicationName: application, deploymentGroupName: group, includeOnlyStatuses: status.map { [$0] },
                nextToken: query["next"].flatMap { $0.isEmpty ? nil : $0 }))
        var infos: [DeploymentInfo] = []
        for chunk in (page.deployments ?? []).chunks(of: 25) {
            infos += try plane.batchGetDeployments(BatchGetDeploymentsInput(deploymentIds: chunk)).deploymentsInfo ?? []
        }
        let applications = try plane.listApplications(ListApplicationsInput()).applications ?? []
        var body = "<h1>Deployments</h1>"
        body += "<form method=\"get\" action=\"/ui/deployments\" class=\"filters\" role=\"search\">"
        body += "<label>Application <select name=\"application\"><option value=\"\">All</option>"
        body += applications.map { "<option\(application == $0 ? " selected" : "")>\(HTML.escape($0))</option>" }.joined()
        body += "</select></label> <label>Group <input name=\"group\" value=\"\(HTML.escape(group ?? ""))\" size=\"12\"></label> "
        body += "<label>Status <select name=\"status\"><option value=\"\">Any</option>"
        body += Self.statuses.map { "<option\(status?.rawValue == $0 ? " selected" : "")>\($0)</option>" }.joined()
        body += "</select></label> <button type=\"submit\">Filter</button></form>"
        if infos.isEmpty {
            body += "<p>No deployments\(application != nil || status != nil ? " match these filters" : " yet").</p>"
        } else {
            body += "<div class=\"scroll\"><table><caption class=\"visually-hidden\">Deployments, newest first</caption><thead><tr>"
            body += ["Deployment", "Status", "Application / group", "Revision", "Creator", "Started", "Duration", "Instances"].map {
                "<th scope=\"col\">\($0)</th>"
            }.joined()
            body += "</tr></thead><tbody>"
            for info in infos {
                let id = info.deploymentId ?? ""
                let overview = info.deploymentOverview
                let counts = [
                    ("succeeded", overview?.succeeded), ("failed", overview?.failed), ("in progress", overview?.inProgress),
                    ("pending", overview?.pending), ("skipped", overview?.skipped),
                ].compactMap { name, count in (count ?? 0) > 0 ? "\(count ?? 0) \(name)" : nil }.joined(separator: ", ")
                body += "<tr><th scope=\"row\"><a href=\"/ui/deployments/\(HTML.component(id))\">\(HTML.escape(id))</a></th>"
                body += "<td>\(HTML.status(info.status?.rawValue))</td>"
                body += "<td>\(HTML.escape(info.applicationName ?? "")) / \(HTML.escape(info.deploymentGroupName ?? ""))</td>"
                body += "<td class=\"mono\">\(HTML.escape(HTML.revision(info.revision)))</td><td>\(HTML.escape(info.creator?.rawValue ?? ""))</td>"
                body += "<td>\(HTML.time(info.startTime ?? info.createTime))</td>"
                body += "<td>\(HTML.duration(from: info.startTime ?? info.createTime, to: info.completeTime))</td>"
                body += "<td>\(HTML.escape(counts.isEmpty ? "—" : counts))</td></tr>"
            }
            body += "</tbody></table></div>"
        }
        if let next = page.nextToken {
            var link = "/ui/deployments?next=\(HTML.component(next))"
            if let application { link += "&application=\(HTML.component(application))" }
            if let group { link += "&group=\(HTML.component(group))" }
            if let status { link += "&status=\(status.rawValue)" }
            body += "<p><a href=\"\(HTML.escape(link))\" rel=\"next\">Older deployments</a></p>"
        }
        return Layout.page(title: "Deployments", viewer: viewer, current: "deployments", body: body)
    }

    /// One deployment: its facts, actions, alarms and triggers, and the instances × lifecycle events grid. `part`
    /// `live` is only the part that changes (what the page's script fetches when the event stream says something happened).
    public func deployment(_ id: String, viewer: Viewer, part: String? = nil) throws -> String? {
        guard let info = try? plane.getDeployment(GetDeploymentInput(deploymentId: id)).deploymentInfo else { return nil }
        var targets: [InstanceTarget] = []
        var nextToken: String?
        repeat {
            let page = try plane.listDeploymentTargets(ListDeploymentTargetsInput(deploymentId: id, nextToken: nextToken))
            for chunk in (page.targetIds ?? []).chunks(of: 25) {
                targets +=
                    try plane.batchGetDeploymentTargets(BatchGetDeploymentTargetsInput(deploymentId: id, targetIds: chunk))
                    .deploymentTargets?.compactMap(\.instanceTarget) ?? []
            }
            nextToken = page.nextToken
        } while nextToken != nil
        let live = liveSection(info, targets)
        if part == "live" { return live }
        var body = "<h1>Deployment <span class=\"mono\">\(HTML.escape(id))</span></h1>"
        body += "<dl class=\"facts\">"
        body += fact(
            "Application",
            "<a href=\"/ui/applications#app-\(HTML.component(info.applicationName ?? ""))\">\(HTML.escape(info.applicationName ?? ""))</a>")
        body += fact(
            "Group",
            "<a href=\"/ui/applications/\(HTML.component(info.applicationName ?? ""))/groups/\(HTML.component(info.deploymentGroupName ?? ""))\">\(HTML.escape(info.deploymentGroupName ?? ""))</a>"
        )
        body += fact("Revision", "<span class=\"mono\">\(HTML.escape(HTML.revision(info.revision)))</span>")
        body += fact("Configuration", HTML.escape(info.deploymentConfigName ?? ""))
        body += fact("Creator", HTML.escape(info.creator?.rawValue ?? ""))
        body += fact("Created", HTML.time(info.createTime))
        if let description = info.description, !description.isEmpty { body += fact("Description", HTML.escape(description)) }
        if let rollback = info.rollbackInfo {
            if let other = rollback.rollbackDeploymentId {
                body += fact("Rolled back by", "<a href=\"/ui/deployments/\(HTML.component(other))\">\(HTML.escape(other))</a>")
            }
            if let other = rollback.rollbackTriggeringDeploymentId {
                body += fact("Rollback of", "<a href=\"/ui/deployments/\(HTML.component(other))\">\(HTML.escape(other))</a>")
            }
            if let message = rollback.rollbackMessage { body += fact("Rollback", HTML.escape(message)) }
        }
        body += "</dl>"
        body += actions(info, viewer: viewer)
        body += "<section id=\"live\" aria-live=\"polite\" data-deployment=\"\(HTML.escape(id))\">\(live)</section>"
        body += try watchers(info)
        return Layout.page(title: "Deployment \(id)", viewer: viewer, current: "deployments", body: body, script: true)
    }

    func fact(_ name: String, _ value: String) -> String { "<div><dt>\(name)</dt><dd>\(value)</dd></div>" }

    /// Status, error, overview and the grid: what the live script replaces.
    func liveSection(_ info: DeploymentInfo, _ targets: [InstanceTarget]) -> String {
        var html = "<p class=\"now\">Status: \(HTML.status(info.status?.rawValue))"
        html += " · \(HTML.duration(from: info.startTime ?? info.createTime, to: info.completeTime))"
        if let overview = info.deploymentOverview {
            html += " · \(overview.succeeded ?? 0) succeeded, \(overview.failed ?? 0) failed, \(overview.inProgress ?? 0) in progress, "
            html += "\(overview.pending ?? 0) pending, \(overview.skipped ?? 0) skipped"
        }
        html += "</p>"
        if let messages = info.deploymentStatusMessages, let last = messages.last { html += "<p>\(HTML.escape(last))</p>" }
        if let error = info.errorInformation {
            html +=
                "<div class=\"error\" role=\"alert\"><strong>\(HTML.escape(error.code?.rawValue ?? "Error"))</strong>: \(HTML.escape(error.message ?? ""))</div>"
        }
        // The events some instance runs: a column every instance skips is left out, and the traffic events of a
        // deployment without traffic control (they are never run).
        let traffic = info.deploymentStyle?.deploymentOption == .withTrafficControl
        var events: [String] = []
        for target in targets {
            for event in target.lifecycleEvents ?? []
            where event.status != .skipped && !events.contains(event.lifecycleEventName ?? "")
                && (traffic || !(event.lifecycleEventName ?? "").hasSuffix("Traffic"))
            {
                events.append(event.lifecycleEventName ?? "")
            }
        }
        let order = targets.first?.lifecycleEvents?.compactMap(\.lifecycleEventName) ?? []
        events.sort { (order.firstIndex(of: $0) ?? Int.max) < (order.firstIndex(of: $1) ?? Int.max) }
        let labelled = targets.contains { $0.instanceLabel != nil }
        html +=
            "<div class=\"scroll\"><table class=\"grid\"><caption>Instances and their lifecycle events</caption><thead><tr><th scope=\"col\">Instance</th>"
        if labelled { html += "<th scope=\"col\">Role</th>" }
        html += "<th scope=\"col\">Status</th>" + events.map { "<th scope=\"col\">\(HTML.escape($0))</th>" }.joined() + "</tr></thead><tbody>"
        var failures = ""
        for target in targets {
            let name = target.targetId ?? ""
            html += "<tr><th scope=\"row\"><a href=\"/ui/instances/\(HTML.component(name))\">\(HTML.escape(name))</a></th>"
            if labelled { html += "<td>\(HTML.escape(target.instanceLabel?.rawValue ?? ""))</td>" }
            html += "<td>\(HTML.status(target.status?.rawValue))</td>"
            for eventName in events {
                guard let event = target.lifecycleEvents?.first(where: { $0.lifecycleEventName == eventName }) else {
                    html += "<td></td>"
                    continue
                }
                let status = event.status?.rawValue ?? "Unknown"
                let took = event.startTime == nil ? "" : "<small>\(HTML.duration(from: event.startTime, to: event.endTime))</small>"
                html +=
                    "<td class=\"cell c-\(HTML.escape(status.lowercased()))\" data-event=\"\(HTML.escape(eventName))\" data-instance=\"\(HTML.escape(name))\">"
                html += "\(HTML.escape(status))\(took)</td>"
                if event.status == .failed, let diagnostics = event.diagnostics {
                    failures += "<article class=\"failure\"><h3>\(HTML.escape(name)) · \(HTML.escape(eventName)) failed</h3><p><strong>"
                    failures += "\(HTML.escape(diagnostics.errorCode?.rawValue ?? ""))</strong>"
                    if let script = diagnostics.scriptName, !script.isEmpty { failures += " in <span class=\"mono\">\(HTML.escape(script))</span>" }
                    failures += ": \(HTML.escape(diagnostics.message ?? ""))</p>"
                    if let tail = diagnostics.logTail, !tail.isEmpty { failures += "<pre class=\"log\">\(HTML.escape(tail))</pre>" }
                    failures += "</article>"
                }
            }
            html += "</tr>"
        }
        html += "</tbody></table></div>"
        if !failures.isEmpty { html += "<section><h2>Why it failed</h2>\(failures)</section>" }
        return html
    }

    /// The actions the viewer's role allows, each a link to its confirmation (which works without JavaScript).
    func actions(_ info: DeploymentInfo, viewer: Viewer) -> String {
        let id = HTML.component(info.deploymentId ?? "")
        var links: [String] = []
        let active = [.created, .queued, .inProgress, .baking, .ready].contains(info.status)
        if active, viewer.allows("StopDeployment") { links.append("<a class=\"button\" href=\"/ui/deployments/\(id)/stop\">Stop…</a>") }
        if info.status == .ready, viewer.allows("ContinueDeployment") {
            links.append("<a class=\"button\" href=\"/ui/deployments/\(id)/continue\">Continue (reroute traffic)…</a>")
        }
        if !active, info.revision != nil, viewer.allows("CreateDeployment") {
            links.append(
                "<a class=\"button\" href=\"/ui/deployments/\(id)/redeploy\">\(info.status == .failed ? "Retry" : "Redeploy") this revision…</a>")
        }
        return links.isEmpty ? "" : "<p class=\"actions\">\(links.joined(separator: " "))</p>"
    }

    /// The group's alarms with their state, and its triggers with their last delivery for this deployment.
    func watchers(_ info: DeploymentInfo) throws -> String {
        guard let application = info.applicationName, let groupName = info.deploymentGroupName,
            let group = try? plane.getDeploymentGroup(GetDeploymentGroupInput(applicationName: application, deploymentGroupName: groupName))
                .deploymentGroupInfo
        else { return "" }
        var html = ""
        let names = (info.overrideAlarmConfiguration ?? group.alarmConfiguration)?.alarms?.compactMap(\.name) ?? []
        if !names.isEmpty {
            let alarms = try plane.describeAlarmsNow(names: names)
            html += "<section><h2>Alarms</h2><ul>"
            for name in names {
                if let alarm = alarms.first(where: { $0.alarmName == name }) {
                    html +=
                        "<li>\(HTML.escape(name)): \(HTML.status(alarm.stateValue)) <small>\(HTML.escape(alarm.stateReason)) (\(HTML.time(alarm.stateUpdatedTimestamp)))</small></li>"
                } else {
                    html += "<li>\(HTML.escape(name)): <span class=\"status s-unknown\">not defined</span></li>"
                }
            }
            html += "</ul></section>"
        }
        if let triggers = group.triggerConfigurations, !triggers.isEmpty {
            let deliveries = try plane.listDeliveriesNow(DeliveryQuery(deploymentId: info.deploymentId, maxItems: 200)).deliveries
            html += "<section><h2>Triggers</h2><ul>"
            for trigger in triggers {
                let name = trigger.triggerName ?? ""
                let last = deliveries.first { $0.origin == name }
                let events = (trigger.triggerEvents ?? []).map(\.rawValue).joined(separator: ", ")
                html +=
                    "<li>\(HTML.escape(name)) → <span class=\"mono\">\(HTML.escape(trigger.triggerTargetArn ?? ""))</span> <small>(\(HTML.escape(events)))</small>"
                if let last {
                    html += ": last delivery \(HTML.status(last.state))"
                    if let error = last.lastError { html += " <small>\(HTML.escape(error))</small>" }
                }
                html += "</li>"
            }
            html += "</ul></section>"
        }
        return html
    }

    /// The confirmation of an action, a form that posts it.
    public func confirmation(_ action: String, deploymentId: String, viewer: Viewer) throws -> String? {
        guard let info = try? plane.getDeployment(GetDeploymentInput(deploymentId: deploymentId)).deploymentInfo else { return nil }
        let id = HTML.escape(deploymentId)
        var body = ""
        switch action {
        case "stop":
            body = "<h1>Stop deployment <span class=\"mono\">\(id)</span>?</h1><p>Instances that have not finished are stopped where they are.</p>"
            body += "<form method=\"post\">\(Layout.csrfField(viewer))<p><label><input type=\"checkbox\" name=\"rollback\" value=\"yes\"> "
            body += "Roll back to the last successful revision</label></p><button type=\"submit\">Stop the deployment</button> "
        case "continue":
            body = "<h1>Continue deployment <span class=\"mono\">\(id)</span>?</h1><p>Traffic is rerouted to the replacement instances.</p>"
            body += "<form method=\"post\">\(Layout.csrfField(viewer))<button type=\"submit\">Continue</button> "
        case "redeploy":
            body = "<h1>Deploy <span class=\"mono\">\(HTML.escape(HTML.revision(info.revision)))</span> again?</h1>"
            body +=
                "<p>A new deployment of this revision to \(HTML.escape(info.applicationName ?? "")) / \(HTML.escape(info.deploymentGroupName ?? "")).</p>"
            body += "<form method=\"post\">\(Layout.csrfField(viewer))<button type=\"submit\">Deploy</button> "
        default:
            return nil
        }
        body += "<a href=\"/ui/deployments/\(HTML.component(deploymentId))\">Cancel</a></form>"
        return Layout.page(title: "Confirm", viewer: viewer, current: "deployments", body: body)
    }

    /// Performs a confirmed action; answers the deployment to show next.
    public func perform(_ action: String, deploymentId: String, form: [String: String], user: String) throws -> String {
        switch action {
        case "stop":
            _ = try plane.stopDeployment(StopDeploymentInput(deploymentId: deploymentId, autoRollbackEnabled: form["rollback"] == "yes"))
            let info = try plane.getDeployment(GetDeploymentInput(deploymentId: deploymentId)).deploymentInfo
            return info?.rollbackInfo?.rollbackDeploymentId ?? deploymentId
        case "continue":
            try plane.continueDeployment(ContinueDeploymentInput(deploymentId: deploymentId, deploymentWaitType: .readyWait))
            return deploymentId
        case "redeploy":
            guard let info = try plane.getDeployment(GetDeploymentInput(deploymentId: deploymentId)).deploymentInfo else { return deploymentId }
            let made = try plane.createDeployment(
                CreateDeploymentInput(
                    applicationName: info.applicationName ?? "", deploymentGroupName: info.deploymentGroupName, revision: info.revision,
                    description: "Redeployed from \(deploymentId) by \(user) (dashboard)"))
            return made.deploymentId ?? deploymentId
        default:
            throw ServiceError("InvalidParameter", "Unknown action \(action.prefix(20)).")
        }
    }
}

extension Array {
    func chunks(of size: Int) -> [[Element]] {
        stride(from: 0, to: count, by: size).map { Array(self[$0..<Swift.min($0 + size, count)]) }
    }
}
