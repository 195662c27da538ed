# Runs AWS's CodeDeploy agent (aws-codedeploy-agent 1.8.x) in the foreground, without its gli-based CLI (Debian has
# no gli): loads the configuration file given as the only argument and starts the master process, which spawns the
# child that polls. SIGTERM stops it. The agent's checkout comes from AWS_CODEDEPLOY_AGENT_DIR; nothing of it is
# part of deployctl. Used by Scripts/aws-agent-check.sh.
agent = ENV.fetch('AWS_CODEDEPLOY_AGENT_DIR') { abort 'set AWS_CODEDEPLOY_AGENT_DIR to a checkout of aws-codedeploy-agent' }
config = ARGV.fetch(0) { abort 'usage: run-master.rb CODEDEPLOYAGENT_YML' }
[
  'lib', 'vendor/gems/process_manager-0.0.13/lib', 'vendor/gems/simple_pid-0.2.1/lib', 'vendor/gems/codedeploy-commands-1.0.0/lib'
].each { |dir| $LOAD_PATH.unshift(File.join(agent, dir)) }
require 'instance_agent'
# The agent's core_ext defines Hash#symbolize_keys only when symbolize_keys! is missing; with Debian's gems the
# latter exists without the former (it comes from ActiveSupport on AWS's own packages).
class Hash
  def symbolize_keys
    each_with_object({}) { |(key, value), out| out[(key.to_sym rescue key)] = value }
  end unless method_defined?(:symbolize_keys)
end
require 'instance_agent/runner/master'
InstanceAgent::Platform.util = InstanceAgent::LinuxUtil
InstanceAgent::Config.config(config_file: config)
InstanceAgent::Config.load_config
InstanceAgent::Runner::Master.new.start
