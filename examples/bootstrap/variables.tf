variable "tenant_id" {
  type        = string
  description = "The Thoth tenant slug."
  default     = "acme"
}

variable "apex_domain" {
  type    = string
  default = "atensecurity.com"
}

variable "webhook_url" {
  type        = string
  description = "Where Thoth delivers governance events for the SIEM."
  default     = "https://siem.company.com/hooks/thoth"
}

variable "webhook_secret" {
  type        = string
  description = "The HMAC secret of the SIEM webhook; pass it with THOTH_VAR_webhook_secret."
  sensitive   = true
}

variable "stitch_host" {
  type        = string
  description = "The Stitch API hostname."
  default     = "api.stitch.example.com"
}
