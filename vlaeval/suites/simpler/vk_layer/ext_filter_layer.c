/*
 * vlaeval Vulkan layer "VK_LAYER_VLAEVAL_ext_filter".
 *
 * SAPIEN 2.2.2 (PyPI wheel, built with CUDA interop) always enables the device
 * extension VK_KHR_external_semaphore_fd. Mesa's lavapipe (the CPU Vulkan driver)
 * does not expose it, so device creation fails with ErrorExtensionNotPresent.
 *
 * This layer's manifest advertises that extension (so the loader lets the request
 * through), and at vkCreateDevice it removes every requested device extension the
 * driver below does not list. Nothing in the CPU rendering path (take_picture and a
 * host readback) uses the removed extension.
 *
 * Interface: the loader-layer negotiation entry point (layer interface version 2),
 * plus vkGetInstanceProcAddr / vkGetDeviceProcAddr exports for older loaders.
 * Per-instance and per-device "next" pointers are kept in small locked lists, newest
 * first. Destruction is not intercepted: intercepting vkDestroyInstance crashed Mesa's
 * implicit device-select layer at teardown (Mesa 25.0.7), and a process creates one
 * instance and a few devices, so the records are simply kept.
 *
 * Set VLAEVAL_VK_LAYER_VERBOSE=1 to log each removed extension on stderr.
 * Build: cc -O2 -shared -fPIC -fvisibility=hidden -o libVkLayer_vlaeval_ext_filter.so ext_filter_layer.c
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vulkan/vulkan.h>
#include <vulkan/vk_layer.h>

#define LAYER_API __attribute__((visibility("default"))) VKAPI_ATTR
#define LAYER_NAME "VK_LAYER_VLAEVAL_ext_filter"

/* ---- bookkeeping: dispatchable handle -> next-layer function pointers ---- */

struct instance_rec {
    VkInstance handle;
    PFN_vkGetInstanceProcAddr next_gipa;
    struct instance_rec *next;
};

struct device_rec {
    VkDevice handle;
    PFN_vkGetDeviceProcAddr next_gdpa;
    struct device_rec *next;
};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct instance_rec *g_instances = NULL;
static struct device_rec *g_devices = NULL;
/* Physical devices carry no back pointer to their instance; SAPIEN creates one
 * instance per process, so the most recent instance's chain is used for them. */
static PFN_vkGetInstanceProcAddr g_last_gipa = NULL;
static VkInstance g_last_instance = VK_NULL_HANDLE;

static int verbose(void) {
    const char *v = getenv("VLAEVAL_VK_LAYER_VERBOSE");
    return v && *v && strcmp(v, "0") != 0;
}

static PFN_vkGetInstanceProcAddr instance_gipa(VkInstance instance) {
    PFN_vkGetInstanceProcAddr found = NULL;
    pthread_mutex_lock(&g_lock);
    for (struct instance_rec *r = g_instances; r; r = r->next)
        if (r->handle == instance) { found = r->next_gipa; break; }
    pthread_mutex_unlock(&g_lock);
    return found;
}

static PFN_vkGetDeviceProcAddr device_gdpa(VkDevice device) {
    PFN_vkGetDeviceProcAddr found = NULL;
    pthread_mutex_lock(&g_lock);
    for (struct device_rec *r = g_devices; r; r = r->next)
        if (r->handle == device) { found = r->next_gdpa; break; }
    pthread_mutex_unlock(&g_lock);
    return found;
}

/* ---- intercepted commands ---- */

static VKAPI_ATTR VkResult VKAPI_CALL filter_CreateInstance(const VkInstanceCreateInfo *info,
                                                            const VkAllocationCallbacks *alloc,
                                                            VkInstance *out) {
    VkLayerInstanceCreateInfo *link = (VkLayerInstanceCreateInfo *)info->pNext;
    for (; link; link = (VkLayerInstanceCreateInfo *)link->pNext)
        if (link->sType == VK_STRUCTURE_TYPE_LOADER_INSTANCE_CREATE_INFO && link->function == VK_LAYER_LINK_INFO)
            break;
    if (!link) return VK_ERROR_INITIALIZATION_FAILED;

    PFN_vkGetInstanceProcAddr next_gipa = link->u.pLayerInfo->pfnNextGetInstanceProcAddr;
    link->u.pLayerInfo = link->u.pLayerInfo->pNext; /* advance for the next layer */
    PFN_vkCreateInstance next_create = (PFN_vkCreateInstance)next_gipa(VK_NULL_HANDLE, "vkCreateInstance");
    if (!next_create) return VK_ERROR_INITIALIZATION_FAILED;

    VkResult res = next_create(info, alloc, out);
    if (res != VK_SUCCESS) return res;

    struct instance_rec *rec = calloc(1, sizeof(*rec));
    if (!rec) return VK_ERROR_OUT_OF_HOST_MEMORY;
    rec->handle = *out;
    rec->next_gipa = next_gipa;
    pthread_mutex_lock(&g_lock);
    rec->next = g_instances;
    g_instances = rec;
    g_last_gipa = next_gipa;
    g_last_instance = *out;
    pthread_mutex_unlock(&g_lock);
    return VK_SUCCESS;
}

/* 1 when `name` is among the driver's extensions for `phys`. */
static int driver_has(const VkExtensionProperties *props, uint32_t count, const char *name) {
    for (uint32_t i = 0; i < count; i++)
        if (strcmp(props[i].extensionName, name) == 0) return 1;
    return 0;
}

static VKAPI_ATTR VkResult VKAPI_CALL filter_CreateDevice(VkPhysicalDevice phys, const VkDeviceCreateInfo *info,
                                                          const VkAllocationCallbacks *alloc, VkDevice *out) {
    VkLayerDeviceCreateInfo *link = (VkLayerDeviceCreateInfo *)info->pNext;
    for (; link; link = (VkLayerDeviceCreateInfo *)link->pNext)
        if (link->sType == VK_STRUCTURE_TYPE_LOADER_DEVICE_CREATE_INFO && link->function == VK_LAYER_LINK_INFO)
            break;
    if (!link) return VK_ERROR_INITIALIZATION_FAILED;

    PFN_vkGetInstanceProcAddr next_gipa = link->u.pLayerInfo->pfnNextGetInstanceProcAddr;
    PFN_vkGetDeviceProcAddr next_gdpa = link->u.pLayerInfo->pfnNextGetDeviceProcAddr;
    link->u.pLayerInfo = link->u.pLayerInfo->pNext;

    pthread_mutex_lock(&g_lock);
    VkInstance instance = g_last_instance;
    pthread_mutex_unlock(&g_lock);

    PFN_vkCreateDevice next_create = (PFN_vkCreateDevice)next_gipa(instance, "vkCreateDevice");
    PFN_vkEnumerateDeviceExtensionProperties enum_ext =
        (PFN_vkEnumerateDeviceExtensionProperties)next_gipa(instance, "vkEnumerateDeviceExtensionProperties");
    if (!next_create || !enum_ext) return VK_ERROR_INITIALIZATION_FAILED;

    uint32_t count = 0;
    VkExtensionProperties *props = NULL;
    if (enum_ext(phys, NULL, &count, NULL) == VK_SUCCESS && count) {
        props = calloc(count, sizeof(*props));
        if (!props || enum_ext(phys, NULL, &count, props) < 0) count = 0;
    }

    const char **kept = calloc(info->enabledExtensionCount + 1, sizeof(*kept));
    if (!kept) { free(props); return VK_ERROR_OUT_OF_HOST_MEMORY; }
    uint32_t n_kept = 0;
    for (uint32_t i = 0; i < info->enabledExtensionCount; i++) {
        const char *name = info->ppEnabledExtensionNames[i];
        if (props == NULL || driver_has(props, count, name)) {
            kept[n_kept++] = name;
        } else if (verbose()) {
            fprintf(stderr, "[" LAYER_NAME "] removed device extension %s (driver lacks it)\n", name);
        }
    }

    VkDeviceCreateInfo filtered = *info;
    filtered.enabledExtensionCount = n_kept;
    filtered.ppEnabledExtensionNames = n_kept ? kept : NULL;
    VkResult res = next_create(phys, &filtered, alloc, out);
    free(kept);
    free(props);
    if (res != VK_SUCCESS) return res;

    struct device_rec *rec = calloc(1, sizeof(*rec));
    if (!rec) return VK_ERROR_OUT_OF_HOST_MEMORY;
    rec->handle = *out;
    rec->next_gdpa = next_gdpa;
    pthread_mutex_lock(&g_lock);
    rec->next = g_devices;
    g_devices = rec;
    pthread_mutex_unlock(&g_lock);
    return VK_SUCCESS;
}

/* ---- proc-addr entry points ---- */

LAYER_API PFN_vkVoidFunction VKAPI_CALL vlaeval_GetDeviceProcAddr(VkDevice device, const char *name);

LAYER_API PFN_vkVoidFunction VKAPI_CALL vlaeval_GetInstanceProcAddr(VkInstance instance, const char *name) {
    static const struct { const char *name; PFN_vkVoidFunction fn; } table[] = {
        {"vkGetInstanceProcAddr", (PFN_vkVoidFunction)vlaeval_GetInstanceProcAddr},
        {"vkGetDeviceProcAddr", (PFN_vkVoidFunction)vlaeval_GetDeviceProcAddr},
        {"vkCreateInstance", (PFN_vkVoidFunction)filter_CreateInstance},
        {"vkCreateDevice", (PFN_vkVoidFunction)filter_CreateDevice},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(name, table[i].name) == 0) return table[i].fn;
    PFN_vkGetInstanceProcAddr next = instance ? instance_gipa(instance) : NULL;
    if (!next) {
        pthread_mutex_lock(&g_lock);
        next = g_last_gipa;
        pthread_mutex_unlock(&g_lock);
    }
    return next ? next(instance, name) : NULL;
}

LAYER_API PFN_vkVoidFunction VKAPI_CALL vlaeval_GetDeviceProcAddr(VkDevice device, const char *name) {
    if (strcmp(name, "vkGetDeviceProcAddr") == 0) return (PFN_vkVoidFunction)vlaeval_GetDeviceProcAddr;
    PFN_vkGetDeviceProcAddr next = device_gdpa(device);
    return next ? next(device, name) : NULL;
}

/* Loader-layer interface negotiation (manifest file_format_version >= 1.1.2). */
LAYER_API VkResult VKAPI_CALL vkNegotiateLoaderLayerInterfaceVersion(VkNegotiateLayerInterface *iface) {
    if (!iface || iface->sType != LAYER_NEGOTIATE_INTERFACE_STRUCT) return VK_ERROR_INITIALIZATION_FAILED;
    if (iface->loaderLayerInterfaceVersion > 2) iface->loaderLayerInterfaceVersion = 2;
    if (iface->loaderLayerInterfaceVersion >= 2) {
        iface->pfnGetInstanceProcAddr = vlaeval_GetInstanceProcAddr;
        iface->pfnGetDeviceProcAddr = vlaeval_GetDeviceProcAddr;
        iface->pfnGetPhysicalDeviceProcAddr = NULL;
    }
    return VK_SUCCESS;
}
