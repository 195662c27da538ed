import ControlPlane
import DeployStore
import Foundation
import Testing

@testable import DeployServer

/// Agent contacts reach the state file once per agent and then again only when ``AgentContacts/rewriteAfter`` has
/// passed or its address or User-Agent changed; answers in the server's process and the last write at shutdown still
/// see the newest contact; a failed write is retried.
@Suite struct AgentContactsTests {
    @Test func anAgentIsWrittenOnceThenOnlyWhenSomethingChanged() {
        let contacts = AgentContacts()
        contacts.record("web-1", address: "10.0.0.1", agent: "aws-sdk-ruby2/2.11")
        let first = contacts.take()
        #expect(first.map(\.instanceName) == ["web-1"])
        // Heard from again at once: nothing to write, but this process knows the newer contact.
        contacts.record("web-1", address: "10.0.0.1", agent: "aws-sdk-ruby2/2.11")
        #expect(contacts.take().isEmpty)
        #expect(contacts.unwritten.count == 1 && contacts.unwritten[0].lastSeen >= first[0].lastSeen)
        // A new address is written at once.
        contacts.record("web-1", address: "10.0.0.2", agent: "aws-sdk-ruby2/2.11")
        #expect(contacts.take().map(\.address) == ["10.0.0.2"])
        // The last write (shutdown) takes every contact newer than the file's.
        contacts.record("web-1", address: "10.0.0.2", agent: "aws-sdk-ruby2/2.11")
        let last = contacts.take(all: true)
        #expect(last.count == 1)
        #expect(contacts.unwritten.isEmpty)
    }

    @Test func aFailedWriteIsTakenAgain() {
        let contacts = AgentContacts()
        contacts.record("web-1", address: "10.0.0.1", agent: "agent")
        contacts.record("web-2", address: "10.0.0.2", agent: "agent")
        let taken = contacts.take()
        #expect(taken.count == 2)
        contacts.restore(taken)
        #expect(Set(contacts.take().map(\.instanceName)) == ["web-1", "web-2"])
        #expect(contacts.take().isEmpty)
    }
}
