"""Data: real files in and out, and the on-the-fly training pairs.

``io`` (CT volumes and radiographs in and out, in the project's conventions), ``patient`` (what of a
clinical CT is the patient's bone, not the table or head holder), ``pose`` (a skull set upright in
its scan, as the training skulls stand), ``neck`` (the neck below a head CT's skull, cut away before the
fit), ``formats`` (the
file formats people have, read as stored), ``dicom`` (DICOM series, DICOMDIR, radiographs,
compressed or not), ``itkfiles`` (MetaImage and NRRD, as ITK tools and 3D Slicer write them),
``meshes`` (iso-surfaces as STL or PLY), ``realdata`` (the real files the book fetches from
packages), ``datasets`` (species banks and the x-ray/volume pairs of the paper), ``realmix`` (real CTs among the
training samples), ``augment`` (what
training does to a specimen first: cut, stretched, turned, blurred, its density scaled).
"""
from xtomo._lazy import submodules

__all__ = ["io", "patient", "pose", "neck", "formats", "dicom", "itkfiles", "meshes", "realdata", "datasets", "realmix",
           "augment"]
__getattr__, __dir__ = submodules(__name__, __all__)
