bp::network! {
    struct Net {
        input a: [2, 3];
        input b: [4, 5];
        let c = concat(a, b, dim = 1);
        output c;
    }
}

fn main() {}
