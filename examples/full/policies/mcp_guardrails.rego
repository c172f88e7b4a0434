package thoth.mcp

import rego.v1

default allow := false

allowed_hosts := {"api.figma.com", "api.notion.com"}

allow if {
	input.tool.kind == "mcp"
	input.request.host in allowed_hosts
}

deny contains msg if {
	not allow
	msg := sprintf("MCP call to %s is outside the broker allow-list", [input.request.host])
}
