namespace PluggableShim.Testing;
