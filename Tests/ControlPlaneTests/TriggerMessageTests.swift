import ControlPlane
import DeployModel
import Foundation
import Testing

/// Trigger messages against what real CodeDeploy sends (captured messages; the shared reference notes on triggers,
/// section 1.3): the same members in the same order, byte for byte.
@Suite struct TriggerMessageTests {
    static func date(_ text: String) -> Date {
        Timestamp.parse(text) ?? Date(timeIntervalSince1970: 0)
    }

    @Test func aSucceededRollbackDeploymentIsWhatCodeDeploySends() {
        var info = DeploymentInfo(
            applicationName: "temporary-status", deploymentGroupName: "temporary-status-deployment", deploymentId: "d-RollbackDeploy",
            status: .succeeded, createTime: Self.date("2022-10-14T08:46:19Z"), completeTime: Self.date("2022-10-14T08:46:22Z"),
            deploymentOverview: DeploymentOverview(pending: 0, inProgress: 0, succeeded: 1, failed: 0, skipped: 0, ready: 0))
        info.rollbackInfo = RollbackInfo(rollbackTriggeringDeploymentId: "d-MainDeployment", rollbackMessage: "ours")
        let message = TriggerMessages.deploymentMessage(info, triggerName: "send-deploy-events", region: "eu-west-2", account: "677183322136")
        let captured =
            #"{"region":"eu-west-2","accountId":"677183322136","eventTriggerName":"send-deploy-events","applicationName":"temporary-status","deploymentId":"d-RollbackDeploy","deploymentGroupName":"temporary-status-deployment","createTime":"Fri Oct 14 08:46:19 UTC 2022","completeTime":"Fri Oct 14 08:46:22 UTC 2022","deploymentOverview":"{\"Succeeded\":1,\"Failed\":0,\"Skipped\":0,\"InProgress\":0,\"Pending\":0}","status":"SUCCEEDED","rollbackInformation":"{\"RollbackMessage\":\"Deployment d-RollbackDeploy is triggered to roll back deployment d-MainDeployment.\",\"RollbackTriggeringDeploymentId\":\"d-MainDeployment\"}"}"#
        #expect(message == captured)
    }

    @Test func aCreatedDeploymentIsWhatCodeDeploySends() {
        let info = DeploymentInfo(
            applicationName: "Portal", deploymentGroupName: "Acceptance", deploymentId: "d-OJSFEI0CI", status: .created,
            createTime: Self.date("2016-10-07T19:50:41Z"),
            deploymentOverview: DeploymentOverview(pending: 3, inProgress: 0, succeeded: 0, failed: 0, skipped: 0, ready: 0))
        let message = TriggerMessages.deploymentMessage(info, triggerName: "Deployment Status Update", region: "us-east-1", account: "963529778735")
        #expect(
            message
                == #"{"region":"us-east-1","accountId":"963529778735","eventTriggerName":"Deployment Status Update","applicationName":"Portal","deploymentId":"d-OJSFEI0CI","deploymentGroupName":"Acceptance","createTime":"Fri Oct 07 19:50:41 UTC 2016","completeTime":null,"status":"CREATED"}"#
        )
    }

    @Test func aFailureCarriesItsErrorAndAnEmptyRollbackInformation() throws {
        var info = DeploymentInfo(
            applicationName: "shop", deploymentGroupName: "web", deploymentId: "d-FAILED123", status: .failed,
            createTime: Self.date("2026-12-07T10:00:00Z"), completeTime: Self.date("2026-12-07T10:01:05Z"),
            deploymentOverview: DeploymentOverview(pending: 0, inProgress: 0, succeeded: 1, failed: 1, skipped: 1, ready: 0))
        info.errorInformation = ErrorInformation(
            code: .healthConstraints, message: "The overall deployment failed because too many individual instances failed deployment.")
        let message = try JSONValue.parse(TriggerMessages.deploymentMessage(info, triggerName: "t", region: "local", account: "000000000000"))
        #expect(message["status"] == .string("FAILED"))
        #expect(message["deploymentOverview"] == .string(#"{"Succeeded":1,"Failed":1,"Skipped":1,"InProgress":0,"Pending":0}"#))
        #expect(
            message["errorInformation"]
                == .string(
                    #"{"ErrorCode":"HEALTH_CONSTRAINTS","ErrorMessage":"The overall deployment failed because too many individual instances failed deployment."}"#
                ))
        #expect(message["rollbackInformation"] == .string("{}"))
    }

    @Test func theSubjectAndTheTriggersThatFire() {
        let triggers = [
            TriggerConfig(triggerName: "all", triggerTargetArn: "arn:aws:sns:local:0:ops", triggerEvents: TriggerEventType.allCases),
            TriggerConfig(triggerName: "failures", triggerTargetArn: "arn:aws:sns:local:0:pager", triggerEvents: [.deploymentFailure]),
            TriggerConfig(triggerName: "rollbacks", triggerTargetArn: "arn:aws:sns:local:0:rb", triggerEvents: [.deploymentRollback]),
        ]
        var info = DeploymentInfo(applicationName: "your-application-name", deploymentId: "d-123ABC456", status: .succeeded)
        let succeeded = TriggerMessages.forDeployment(info, triggers: triggers, region: "us-east-1", account: "123456789")
        #expect(succeeded.map(\.triggerName) == ["all"])
        #expect(succeeded.first?.subject == "SUCCEEDED: AWS CodeDeploy d-123ABC456 in us-east-1 to your-application-name")
        #expect(succeeded.first?.eventType == .deploymentSuccess)
        info.status = .failed
        #expect(TriggerMessages.forDeployment(info, triggers: triggers, region: "us-east-1", account: "1").map(\.triggerName) == ["all", "failures"])
        // A rollback deployment's creation is a DeploymentStart and the DeploymentRollback.
        info.status = .created
        info.rollbackInfo = RollbackInfo(rollbackTriggeringDeploymentId: "d-MAIN")
        let created = TriggerMessages.forDeployment(info, triggers: triggers, region: "us-east-1", account: "1")
        #expect(created.map(\.triggerName) == ["all", "rollbacks"])
        #expect(created.last?.eventType == .deploymentRollback)
        info.status = .baking
        #expect(TriggerMessages.forDeployment(info, triggers: triggers, region: "us-east-1", account: "1").isEmpty)
    }

    @Test func anInstanceMessageListsTheEventsThatRan() throws {
        let target = InstanceTarget(
            deploymentId: "d-75I7MBT7C", targetId: "web-1", targetArn: "arn:aws:codedeploy:us-east-2:444455556666:instance/web-1",
            status: .succeeded, lastUpdatedAt: Date(timeIntervalSince1970: 1_446_744_207.564),
            lifecycleEvents: [
                LifecycleEvent(
                    lifecycleEventName: "ApplicationStop", startTime: Date(timeIntervalSince1970: 1_446_744_188.595),
                    endTime: Date(timeIntervalSince1970: 1_446_744_188.711), status: .succeeded),
                LifecycleEvent(lifecycleEventName: "BeforeInstall", status: .pending),
            ])
        let message = TriggerMessages.instanceMessage(
            target, deploymentId: "d-75I7MBT7C", triggerName: "trigger-group-us-east-instance-succeeded", region: "us-east-2", account: "111222333444"
        )
        #expect(
            message
                == #"{"region":"us-east-2","accountId":"111222333444","eventTriggerName":"trigger-group-us-east-instance-succeeded","deploymentId":"d-75I7MBT7C","instanceId":"arn:aws:codedeploy:us-east-2:444455556666:instance/web-1","lastUpdatedAt":"1446744207.564","instanceStatus":"Succeeded","lifecycleEvents":[{"LifecycleEvent":"ApplicationStop","LifecycleEventStatus":"Succeeded","StartTime":"1446744188.595","EndTime":"1446744188.711"}]}"#
        )
        let fired = TriggerMessages.forInstance(
            target, deploymentId: "d-75I7MBT7C", applicationName: "shop",
            triggers: [TriggerConfig(triggerName: "i", triggerTargetArn: "arn:aws:sns:x:0:t", triggerEvents: [.instanceSuccess])],
            region: "us-east-2", account: "1")
        #expect(fired.first?.subject == "SUCCEEDED: AWS CodeDeploy d-75I7MBT7C in us-east-2 to shop")
    }

    @Test func javaDatesAreUTCWithZeroPaddedDays() {
        #expect(TriggerMessages.javaDate(Date(timeIntervalSince1970: 0)) == "Thu Jan 01 00:00:00 UTC 1970")
        #expect(TriggerMessages.javaDate(Self.date("2016-08-10T18:39:05Z")) == "Wed Aug 10 18:39:05 UTC 2016")
    }
}
