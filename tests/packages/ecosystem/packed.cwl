{
  "$graph": [
    {
      "class": "CommandLineTool",
      "id": "#ndvi_tool.cwl",
      "hints": [
        {
          "class": "DockerRequirement",
          "dockerPull": "localhost/ndvi-tile:0.1.0"
        }
      ],
      "requirements": [
        {
          "class": "ResourceRequirement",
          "coresMin": 1,
          "ramMin": 1024
        }
      ],
      "baseCommand": [
        "ndvi-tile"
      ],
      "arguments": [
        {
          "prefix": "--out",
          "valueFrom": "$(runtime.outdir)"
        }
      ],
      "inputs": [
        {
          "type": "string",
          "inputBinding": {
            "prefix": "--bbox"
          },
          "id": "#ndvi_tool.cwl/bbox"
        },
        {
          "type": "string",
          "inputBinding": {
            "prefix": "--datetime"
          },
          "id": "#ndvi_tool.cwl/datetime"
        },
        {
          "type": "int",
          "inputBinding": {
            "prefix": "--epsg"
          },
          "id": "#ndvi_tool.cwl/epsg"
        },
        {
          "type": "Directory",
          "inputBinding": {
            "prefix": "--items"
          },
          "id": "#ndvi_tool.cwl/items"
        },
        {
          "type": "double",
          "inputBinding": {
            "prefix": "--resolution"
          },
          "id": "#ndvi_tool.cwl/resolution"
        },
        {
          "type": "string",
          "inputBinding": {
            "prefix": "--tile-id"
          },
          "id": "#ndvi_tool.cwl/tile_id"
        }
      ],
      "outputs": [
        {
          "type": "Directory",
          "outputBinding": {
            "glob": "$(inputs.tile_id)"
          },
          "id": "#ndvi_tool.cwl/ndvi"
        }
      ]
    },
    {
      "class": "Workflow",
      "id": "#main",
      "label": "NDVI, packed by cwltool --pack",
      "inputs": [
        {
          "type": "string",
          "id": "#main/bbox"
        },
        {
          "type": "string",
          "id": "#main/datetime"
        },
        {
          "type": "int",
          "id": "#main/epsg"
        },
        {
          "type": "Directory",
          "id": "#main/items"
        },
        {
          "type": "double",
          "id": "#main/resolution"
        },
        {
          "type": "string",
          "id": "#main/tile_id"
        }
      ],
      "outputs": [
        {
          "type": "Directory",
          "outputSource": "#main/compute/ndvi",
          "id": "#main/ndvi"
        }
      ],
      "steps": [
        {
          "run": "#ndvi_tool.cwl",
          "in": [
            {
              "source": "#main/bbox",
              "id": "#main/compute/bbox"
            },
            {
              "source": "#main/datetime",
              "id": "#main/compute/datetime"
            },
            {
              "source": "#main/epsg",
              "id": "#main/compute/epsg"
            },
            {
              "source": "#main/items",
              "id": "#main/compute/items"
            },
            {
              "source": "#main/resolution",
              "id": "#main/compute/resolution"
            },
            {
              "source": "#main/tile_id",
              "id": "#main/compute/tile_id"
            }
          ],
          "out": [
            "#main/compute/ndvi"
          ],
          "id": "#main/compute"
        }
      ]
    }
  ],
  "cwlVersion": "v1.2",
  "$namespaces": {
    "s": "https://schema.org/"
  },
  "s:softwareVersion": "0.3.1"
}
