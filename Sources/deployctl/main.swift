import DeployCLI

#if canImport(Glibc)
    import Glibc
#endif

if let status = DeployctlCommand.answeredImmediately(CommandLine.arguments) {
    exit(status)
}
await DeployctlCommand.runMain()
