// Test library: a valid shared library that is not an ASG Lab plugin (no asg_plugin_entry).
extern "C" int some_unrelated_function() { return 42; }
