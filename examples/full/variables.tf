variable "tenant_id" {
  type        = string
  description = "The Thoth tenant slug."
  default     = "acme"
}

variable "webhook_secret" {
  type        = string
  description = "The HMAC secret of the governance webhook."
  sensitive   = true
}

variable "siem_secret" {
  type        = string
  description = "The HMAC secret of the SIEM export webhook."
  sensitive   = true
}

variable "pam_request_secret" {
  type        = string
  description = "The shared secret of privileged-access requests."
  sensitive   = true
}

variable "approval_id" {
  type        = string
  description = "A pending approval to resolve; empty to resolve none."
  default     = ""
}

variable "endpoints" {
  type = map(object({
    hostname = string
    employee = string
    os       = string
  }))
  description = "The managed laptops of the claims team, by endpoint id."
  default = {
    "ep-claims-001" = { hostname = "claims-mbp-001", employee = "Ana Ruiz", os = "macos" }
    "ep-claims-002" = { hostname = "claims-mbp-002", employee = "Ben Ode", os = "macos" }
  }
}

variable "mcp_vendors" {
  type = map(object({
    name     = string
    hosts    = list(string)
    approved = bool
  }))
  description = "The MCP tool vendors of the catalogue, by vendor id."
  default = {
    figma    = { name = "Figma", hosts = ["api.figma.com", "*.figma.com"], approved = true }
    notion   = { name = "Notion", hosts = ["api.notion.com"], approved = true }
    pastebin = { name = "Pastebin", hosts = ["pastebin.com"], approved = false }
  }
}
