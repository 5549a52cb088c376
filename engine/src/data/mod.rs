//! Data: datasets, the I-JEPA image transform and the threaded batch loader.
//!
//! Mirrors the data side of the official code: `src/datasets/imagenet1k.py` (dataset +
//! `DistributedSampler` + `DataLoader`), `src/transforms.py` (`make_transforms`:
//! RandomResizedCrop, ToTensor, Normalize) and torchvision's `RandomResizedCrop`, with every
//! random draw keyed by (seed, epoch, sample) instead of worker-local generators, so a batch
//! is the same for any number of loader threads and after a resume.
//!
//! - [`idx`]: the idx(.gz) file format of (Fashion-)MNIST.
//! - [`fashion_mnist`]: the Fashion-MNIST dataset, from a folder or embedded in the binary.
//! - [`transform`]: RandomResizedCrop (torchvision-exact parameters, PIL-exact bilinear
//!   resize), ToTensor + ImageNet Normalize, and the evaluation transform.
//! - [`loader`]: background workers building whole batches (images, labels, masks) in order.

pub mod fashion_mnist;
pub mod idx;
pub mod loader;
pub mod transform;

pub use fashion_mnist::{FashionMnist, Split};
pub use loader::{Batch, CollateFn, EpochIter, Loader, LoaderCfg};
pub use transform::{
    CropParams, EvalTransform, PassOrder, RandomResizedCrop, IMAGENET_MEAN, IMAGENET_STD,
};
