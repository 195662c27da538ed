import DeployCLI

DeployctlCommand.main()
