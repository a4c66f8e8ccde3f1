package org.elasticsearch.plugins;

import java.util.List;

/** The descriptor of a plugin loaded from the class path, for the 8.x server (twelve-argument constructor). */
final class ClasspathPluginDescriptor {
    private ClasspathPluginDescriptor() {}

    static PluginDescriptor of(String name, String version, String javaVersion, String className) {
        return new PluginDescriptor(
            name, "plugin loaded from the class path", version, version, javaVersion, className,
            null, List.of(), false, false, false, false
        );
    }
}
