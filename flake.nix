{
  description = "cryptocast: reproducible MLOps monorepo for crypto price forecasting";

  # Tools come from nixpkgs; Python packages come from requirements.lock (darts and zenml
  # are not packaged in nixpkgs), installed into .venv by the same `make install`.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = [
            pkgs.python311
            pkgs.uv
            pkgs.gnumake
            pkgs.git
            pkgs.ruff
            pkgs.pre-commit
            pkgs.statix
            pkgs.deadnix
            pkgs.nixfmt-rfc-style
          ];
          # torch and LightGBM wheels need libstdc++ and libgomp at run time
          LD_LIBRARY_PATH = pkgs.lib.makeLibraryPath [ pkgs.stdenv.cc.cc.lib ];
          shellHook = ''
            export PYTHON_BIN=${pkgs.python311}/bin/python3.11
            make install && source .venv/bin/activate
          '';
        };
      });

      # `nix flake check`: the Nix linters in the sandbox. `make lint` and `make test` need
      # the lockfile's packages from PyPI, which the build sandbox cannot reach: run them
      # in `nix develop` (see README).
      checks = forAllSystems (pkgs: {
        nix-lint = pkgs.runCommand "nix-lint" {
          nativeBuildInputs = [
            pkgs.statix
            pkgs.deadnix
            pkgs.nixfmt-rfc-style
          ];
        } ''
          statix check ${self}/flake.nix
          deadnix --fail ${self}/flake.nix
          nixfmt --check ${self}/flake.nix
          touch $out
        '';
      });
    };
}
