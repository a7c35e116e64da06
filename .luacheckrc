-- luacheck settings for `make lint`
std = "lua54"
max_line_length = false
unused_args = false
globals = { "crater", "CRATER_LAB" }
files["spec/"] = { std = "lua54+busted" }
