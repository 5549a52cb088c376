//! `ijepa import-yaml`: official I-JEPA YAML configs -> experiment KDL (being written).
