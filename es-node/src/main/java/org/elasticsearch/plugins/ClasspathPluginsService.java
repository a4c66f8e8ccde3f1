package org.elasticsearch.plugins;

import org.elasticsearch.Build;
import org.elasticsearch.common.settings.Settings;

import java.util.ArrayList;
import java.util.List;

/**
 * A plugins service whose plugins are classes already on the class path.
 *
 * <p>A distribution loads plugins and modules as bundles from {@code path.home}; the
 * Maven Central artifacts have no bundles, so the plugin classes are instantiated
 * directly. It lives in this package because {@link PluginsService.LoadedPlugin},
 * {@link PluginsService#loadPlugin} and {@link PluginsService#loadExtensions} are
 * package-private. The descriptor's constructor differs between server majors: it is made by
 * {@code ClasspathPluginDescriptor}, one per major ({@code src/es8}, {@code src/es9}).
 */
public final class ClasspathPluginsService extends PluginsService {
    private final List<LoadedPlugin> loaded;

    public ClasspathPluginsService(Settings settings, PluginsLoader noBundles, List<Class<? extends Plugin>> pluginClasses) {
        super(settings, null, noBundles);
        String javaVersion = Integer.toString(Runtime.version().feature());
        List<LoadedPlugin> plugins = new ArrayList<>(pluginClasses.size());
        for (Class<? extends Plugin> pluginClass : pluginClasses) {
            PluginDescriptor descriptor = ClasspathPluginDescriptor.of(
                pluginClass.getSimpleName(), Build.current().version(), javaVersion, pluginClass.getName()
            );
            Plugin instance = loadPlugin(pluginClass, settings, null);
            plugins.add(new LoadedPlugin(descriptor, instance, pluginClass.getClassLoader()));
        }
        loadExtensions(plugins);
        this.loaded = List.copyOf(plugins);
    }

    @Override
    protected List<LoadedPlugin> plugins() {
        return loaded;
    }
}
