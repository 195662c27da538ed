import ControlPlane
import DeployModel
import Foundation
import HostCommandModel
import Testing

/// Manual alarms stop the deployments that watch them, as AWS does (issue 24, part); on both stores.
@Suite struct AlarmTests {
    func fixture(_ store: StoreKind, alarms: AlarmConfiguration?, rollbackOnAlarm: Bool = true) throws -> (ControlPlane, URL) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("al-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let plane = ControlPlane(store: try store.make(in: dir))
        _ = try plane.createApplication(CreateApplicationInput(applicationName: "shop"))
        for name in ["a", "b"] {
            try plane.registerOnPremisesInstance(RegisterOnPremisesInstanceInput(instanceName: name))
            try plane.addTagsToOnPremisesInstances(AddTagsToOnPremisesInstancesInput(tags: [Tag(key: "k", value: "v")], instanceNames: [name]))
        }
        _ = try plane.createDeploymentGroup(
            CreateDeploymentGroupInput(
                applicationName: "shop", deploymentGroupName: "web", deploymentConfigName: "CodeDeployDefault.OneAtATime",
                onPremisesInstanceTagFilters: [TagFilter(key: "k", type: .keyOnly)], alarmConfiguration: alarms,
                autoRollbackConfiguration: rollbackOnAlarm ? AutoRollbackConfiguration(enabled: true, events: [.deploymentStopOnAlarm]) : nil))
        return (plane, dir)
    }

    func deploy(_ plane: ControlPlane, key: String = "v1.zip", override: AlarmConfiguration? = nil) throws -> String {
        try plane.createDeployment(
            CreateDeploymentInput(
                applicationName: "shop", deploymentGroupName: "web",
                revision: RevisionLocation(revisionType: .s3, s3Location: S3Location(bucket: "b", key: key, bundleType: .zip)),
                overrideAlarmConfiguration: override)
        ).deploymentId ?? ""
    }

    func finish(_ plane: ControlPlane) throws {
        for instance in ["a", "b"] {
            while let command = try plane.pollHostCommand(instanceName: instance) {
                try plane.completeHostCommand(id: command.id, report: HostCommandReport(status: .succeeded))
            }
        }
    }

    func info(_ plane: ControlPlane, _ id: String) throws -> DeploymentInfo? {
        try plane.getDeployment(GetDeploymentInput(deploymentId: id)).deploymentInfo
    }

    static let watching = AlarmConfiguration(enabled: true, alarms: [Alarm(name: "errors-high")])
    static let activatedMessage =
        "One or more alarms have been activated according to the Amazon CloudWatch metrics you selected, and the affected deployments have been stopped. Activated alarms: <errors-high>"

    @Test(arguments: StoreKind.selected) func anAlarmStopsTheDeploymentInFlightAndRollsBack(_ store: StoreKind) throws {
        let (plane, dir) = try fixture(store, alarms: Self.watching)
        defer { try? FileManager.default.removeItem(at: dir) }
        try plane.putAlarmNow(name: "errors-high", definition: .manual)
        let good = try deploy(plane)
        try finish(plane)
        #expect(try info(plane, good)?.status == .succeeded)

        let bad = try deploy(plane, key: "v2.zip")
        _ = try plane.pollHostCommand(instanceName: "a")
        #expect(try plane.setAlarmStateNow(name: "errors-high", state: "ALARM", reason: "5xx above 1 %") == [bad])
        let stopped = try #require(try info(plane, bad))
        #expect(stopped.status == .stopped)
        #expect(stopped.errorInformation?.code == .alarmActive)
        #expect(stopped.errorInformation?.message == Self.activatedMessage)
        let rollbackId = try #require(stopped.rollbackInfo?.rollbackDeploymentId)
        let rollback = try #require(try info(plane, rollbackId))
        #expect(rollback.creator == .codeDeployRollback)
        #expect(rollback.rollbackInfo?.rollbackTriggeringDeploymentId == bad)
        // The rollback is not stopped by the alarm that caused it.
        #expect(rollback.status?.isActive == true)
        #expect(try plane.describeAlarmsNow(names: ["errors-high"]).first?.stateValue == "ALARM")
        #expect(try plane.describeAlarmsNow(names: ["errors-high"]).first?.stateReason == "5xx above 1 %")
    }

    @Test(arguments: StoreKind.selected) func anAlarmAlreadyActiveStopsADeploymentAtOnceUnlessOverridden(_ store: StoreKind) throws {
        let (plane, dir) = try fixture(store, alarms: Self.watching, rollbackOnAlarm: false)
        defer { try? FileManager.default.removeItem(at: dir) }
        try plane.putAlarmNow(name: "errors-high", definition: .manual)
        try plane.setAlarmStateNow(name: "errors-high", state: "ALARM", reason: "still broken")
        let blocked = try deploy(plane)
        #expect(try info(plane, blocked)?.status == .stopped)
        #expect(try info(plane, blocked)?.errorInformation?.message == Self.activatedMessage)
        #expect(try plane.pollHostCommand(instanceName: "a") == nil)
        // The fix for what set the alarm off is deployed with the alarms overridden (AWS's reason for the override).
        let fix = try deploy(plane, key: "fix.zip", override: AlarmConfiguration(enabled: false, alarms: [Alarm(name: "errors-high")]))
        #expect(try info(plane, fix)?.status == .created)
        #expect(try info(plane, fix)?.overrideAlarmConfiguration?.enabled == false)
        try plane.setAlarmStateNow(name: "errors-high", state: "OK", reason: "fixed")
        try finish(plane)
        #expect(try info(plane, fix)?.status == .succeeded)
    }

    @Test(arguments: StoreKind.selected) func anUndefinedAlarmStopsUnlessItsFailureIsIgnored(_ store: StoreKind) throws {
        let (plane, dir) = try fixture(store, alarms: AlarmConfiguration(enabled: true, alarms: [Alarm(name: "nobody-defined-me")]))
        defer { try? FileManager.default.removeItem(at: dir) }
        let stopped = try deploy(plane)
        #expect(try info(plane, stopped)?.status == .stopped)
        #expect(try info(plane, stopped)?.errorInformation?.code == .codedeployResourceCannotBeFound)
        #expect(try info(plane, stopped)?.errorInformation?.message?.contains("nobody-defined-me") == true)
        let ignored = try deploy(
            plane, override: AlarmConfiguration(enabled: true, ignorePollAlarmFailure: true, alarms: [Alarm(name: "nobody-defined-me")]))
        #expect(try info(plane, ignored)?.status == .created)
    }

    @Test(arguments: StoreKind.selected) func badAlarmInputIsRefusedAndChangesNothing(_ store: StoreKind) throws {
        let (plane, dir) = try fixture(store, alarms: nil)
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(serviceErrorCode { try plane.putAlarmNow(name: "", definition: .manual) } == "InvalidParameterValue")
        // A Prometheus alarm needs its query and an http(s) URL; an HTTP alarm sane numbers; a manual one nothing else.
        for bad in [
            AlarmDefinition(kind: .prometheus),
            AlarmDefinition(kind: .prometheus, prometheusQuery: "up == 0", prometheusURL: "file:///etc/passwd"),
            AlarmDefinition(kind: .prometheus, prometheusQuery: "up == 0", prometheusURL: "http://127.0.0.1:9090", forSeconds: -1),
            AlarmDefinition(kind: .http, httpURL: "http://127.0.0.1/health", failures: 0),
            AlarmDefinition(kind: .http, httpURL: "http://127.0.0.1/health", expectStatus: 99),
            AlarmDefinition(kind: .manual, httpURL: "http://127.0.0.1/health"),
        ] {
            #expect(serviceErrorCode { try plane.putAlarmNow(name: "p99", definition: bad) } == "InvalidParameterValue", "\(bad)")
        }
        #expect(serviceErrorCode { try plane.setAlarmStateNow(name: "missing", state: "ALARM", reason: "") } == "ResourceNotFound")
        try plane.putAlarmNow(name: "cpu", definition: .manual)
        #expect(serviceErrorCode { try plane.setAlarmStateNow(name: "cpu", state: "RED", reason: "") } == "InvalidParameterValue")
        #expect(serviceErrorCode { try plane.deleteAlarmsNow(names: ["cpu", "missing"]) } == "ResourceNotFound")
        #expect(try plane.describeAlarmsNow(names: nil).map(\.alarmName) == ["cpu"], "an all-or-nothing delete deleted nothing")
        try plane.deleteAlarmsNow(names: ["cpu"])
        #expect(try plane.describeAlarmsNow(names: nil).isEmpty)
        let duplicate = AlarmConfiguration(enabled: true, alarms: [Alarm(name: "x"), Alarm(name: "x")])
        #expect(
            serviceErrorCode {
                _ = try plane.updateDeploymentGroup(
                    UpdateDeploymentGroupInput(applicationName: "shop", currentDeploymentGroupName: "web", alarmConfiguration: duplicate))
            } == "InvalidAlarmConfigException")
        #expect(
            serviceErrorCode { _ = try deploy(plane, override: AlarmConfiguration(enabled: true, alarms: [])) } == "InvalidAlarmConfigException")
    }

    @Test(arguments: StoreKind.selected) func evaluationsAreRecordedAndActedOn(_ store: StoreKind) throws {
        let (plane, dir) = try fixture(store, alarms: Self.watching, rollbackOnAlarm: false)
        defer { try? FileManager.default.removeItem(at: dir) }
        let probe = AlarmDefinition(kind: .http, httpURL: "http://127.0.0.1:9/health")
        try plane.putAlarmNow(name: "errors-high", definition: probe)
        let stored = try #require(try plane.evaluatedAlarms().first)
        #expect(stored.definition == AlarmDefinition(kind: .http, httpURL: "http://127.0.0.1:9/health", expectStatus: 200, failures: 3))
        // An evaluation of an older definition is dropped.
        let first = try deploy(plane)
        #expect(
            try plane.recordAlarmEvaluation(name: "errors-high", definition: probe, observation: AlarmObservation(state: "ALARM", reason: "x"))
                .isEmpty)
        #expect(try info(plane, first)?.status == .created)
        // Unreadable: the deployment stops unless it ignores poll failures.
        let unreadable = AlarmObservation(state: "INSUFFICIENT_DATA", reason: "Prometheus cannot be read", unreadable: true)
        #expect(try plane.recordAlarmEvaluation(name: "errors-high", definition: stored.definition, observation: unreadable) == [first])
        #expect(try info(plane, first)?.errorInformation?.code == .codedeployResourceCannotBeFound)
        #expect(try plane.describeAlarmsNow(names: ["errors-high"]).first?.stateValue == "INSUFFICIENT_DATA")
        let ignoring = try deploy(
            plane, key: "v2.zip", override: AlarmConfiguration(enabled: true, ignorePollAlarmFailure: true, alarms: [Alarm(name: "errors-high")]))
        #expect(try plane.recordAlarmEvaluation(name: "errors-high", definition: stored.definition, observation: unreadable).isEmpty)
        #expect(try info(plane, ignoring)?.status == .created)
        // ALARM stops it even so, and the evaluation is in its event stream.
        let alarm = AlarmObservation(state: "ALARM", reason: "3 of 3 in a row")
        #expect(try plane.recordAlarmEvaluation(name: "errors-high", definition: stored.definition, observation: alarm) == [ignoring])
        #expect(try info(plane, ignoring)?.errorInformation?.code == .alarmActive)
        let stream = try plane.events(StreamEventQuery(deploymentId: ignoring)).map { "\($0.event)" }
        #expect(stream.contains { $0.contains("deployctl Alarm Evaluation") && $0.contains("3 of 3 in a row") })
    }

    /// Bake time (zonalConfig.monitorDurationInSeconds): Baking after the last instance, alarms still watched.
    @Test(arguments: StoreKind.selected) func aBakingDeploymentIsStoppedByAnAlarmOrSucceedsWhenItsTimeIsOver(_ store: StoreKind) throws {
        let clock = ManualClock()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("bake-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let plane = ControlPlane(store: try store.make(in: dir), clock: { clock.now })
        _ = try plane.createApplication(CreateApplicationInput(applicationName: "shop"))
        try plane.registerOnPremisesInstance(RegisterOnPremisesInstanceInput(instanceName: "a"))
        try plane.addTagsToOnPremisesInstances(AddTagsToOnPremisesInstancesInput(tags: [Tag(key: "k", value: "v")], instanceNames: ["a"]))
        _ = try plane.createDeploymentConfig(
            CreateDeploymentConfigInput(
                deploymentConfigName: "Bake60", minimumHealthyHosts: MinimumHealthyHosts(type: .hostCount, value: 0),
                zonalConfig: ZonalConfig(monitorDurationInSeconds: 60)))
        _ = try plane.createDeploymentGroup(
            CreateDeploymentGroupInput(
                applicationName: "shop", deploymentGroupName: "web", deploymentConfigName: "Bake60",
                onPremisesInstanceTagFilters: [TagFilter(key: "k", type: .keyOnly)], alarmConfiguration: Self.watching,
                autoRollbackConfiguration: AutoRollbackConfiguration(enabled: true, events: [.deploymentStopOnAlarm])))
        try plane.putAlarmNow(name: "errors-high", definition: .manual)
        func run() throws -> String {
            let id = try deploy(plane, key: "v\(UUID().uuidString.prefix(4)).zip")
            while let command = try plane.pollHostCommand(instanceName: "a") {
                try plane.completeHostCommand(id: command.id, report: HostCommandReport(status: .succeeded))
            }
            return id
        }
        let first = try run()
        var baking = try info(plane, first)
        #expect(baking?.status == .baking && baking?.completeTime == nil)
        #expect(baking?.deploymentStatusMessages?.last?.hasPrefix("Baking: watching its alarms for 60 s") == true)
        // The group stays busy while it bakes.
        #expect(serviceErrorCode { _ = try deploy(plane, key: "other.zip") } == "DeploymentLimitExceededException")
        clock.advance(59)
        #expect(try plane.expireBakes() == 0)
        clock.advance(2)
        #expect(try plane.expireBakes() == 1)
        #expect(try info(plane, first)?.status == .succeeded)

        let second = try run()
        #expect(try info(plane, second)?.status == .baking)
        #expect(try plane.setAlarmStateNow(name: "errors-high", state: "ALARM", reason: "5xx") == [second])
        baking = try info(plane, second)
        #expect(baking?.status == .stopped && baking?.errorInformation?.code == .alarmActive)
        #expect(baking?.rollbackInfo?.rollbackDeploymentId != nil, "rolled back to the first release")
    }
}
