locals {
  x = format("%.99999999999f", 1)
}
