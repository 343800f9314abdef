"""Model families of the zoo, one module each; importing one registers its models."""
