import DeployCLI

await DeployctlCommand.runMain()
