resource "thoth_fleet" "f" {
  count = 1e19
  name  = "f"
}
