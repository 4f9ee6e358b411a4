//! The method to press, from a `.proto` compiled at run time (`protox`,
//! no `protoc` needed) or from an encoded `FileDescriptorSet`.

use std::path::{Path, PathBuf};

use prost_reflect::{DescriptorPool, MethodDescriptor};

/// Compiles `proto` (its directory and `includes` are the import paths)
/// into a descriptor pool.
pub fn compile_proto(proto: &Path, includes: &[PathBuf]) -> Result<DescriptorPool, String> {
    let dir = proto
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut paths = vec![dir.to_path_buf()];
    paths.extend(includes.iter().cloned());
    let mut compiler =
        protox::Compiler::new(&paths).map_err(|e| format!("--proto {}: {e}", proto.display()))?;
    compiler.include_imports(true);
    compiler
        .open_file(proto)
        .map_err(|e| format!("--proto {}: {e}", proto.display()))?;
    Ok(compiler.descriptor_pool())
}

/// Reads an encoded `FileDescriptorSet` (`protoc --include_imports
/// --descriptor_set_out=FILE`, or `protox`'s).
pub fn load_descriptor_set(path: &Path) -> Result<DescriptorPool, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("--descriptor-set {}: {e}", path.display()))?;
    DescriptorPool::decode(&bytes[..])
        .map_err(|e| format!("--descriptor-set {}: {e}", path.display()))
}

/// The method `spec` names: `package.Service/Method` (gRPC's and bRPC's
/// HTTP path form) or `package.Service.Method`. The error lists what the
/// pool has, so a typo is easy to see.
pub fn find_method(pool: &DescriptorPool, spec: &str) -> Result<MethodDescriptor, String> {
    let (service, method) = spec
        .split_once('/')
        .or_else(|| spec.rsplit_once('.'))
        .ok_or_else(|| format!("--method {spec:?}: expected package.Service/Method"))?;
    let Some(sd) = pool.get_service_by_name(service) else {
        let known: Vec<_> = pool.services().map(|s| s.full_name().to_string()).collect();
        return Err(format!(
            "unknown service {service:?} (the descriptors define: {})",
            list(&known)
        ));
    };
    let found = sd.methods().find(|m| m.name() == method);
    found.ok_or_else(|| {
        let known: Vec<_> = sd.methods().map(|m| m.name().to_string()).collect();
        format!(
            "unknown method {method:?} of service {service} (it has: {})",
            list(&known)
        )
    })
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}
