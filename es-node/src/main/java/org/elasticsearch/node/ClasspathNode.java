package org.elasticsearch.node;

import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.plugins.ClasspathPluginsService;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.plugins.PluginsLoader;
import org.elasticsearch.plugins.PluginsService;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * An Elasticsearch node whose plugins come from the class path instead of bundles.
 *
 * <p>{@link NodeConstruction#prepareConstruction} and {@link NodeServiceProvider} are
 * package-private, hence this package.
 */
public final class ClasspathNode extends Node {
    public ClasspathNode(Settings settings, List<Class<? extends Plugin>> pluginClasses) {
        super(construct(settings, pluginClasses));
    }

    private static NodeConstruction construct(Settings settings, List<Class<? extends Plugin>> pluginClasses) {
        PluginsLoader noBundles = PluginsLoader.createPluginsLoader(Set.of(), Set.of(), Map.of(), false);
        NodeServiceProvider services = new NodeServiceProvider() {
            @Override
            PluginsService newPluginService(Environment environment, PluginsLoader loader) {
                return new ClasspathPluginsService(environment.settings(), loader, pluginClasses);
            }
        };
        return NodeConstruction.prepareConstruction(new Environment(settings, null), noBundles, services, true);
    }
}
