//! ijepa-reports: reads run folders (manifests, metrics) without libtorch.
